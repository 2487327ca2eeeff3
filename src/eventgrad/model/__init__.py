"""User-facing model definitions: safe expression parsing and the UserNeuron / UserSynapse classes."""

from .errors import ModelError
from .expressions import ALLOWED_FUNCTIONS, parse_expression, symbol
from .identifiers import RESERVED_NAMES
from .user import StateVar, UserNeuron, UserSynapse

__all__ = [
    "ALLOWED_FUNCTIONS",
    "RESERVED_NAMES",
    "ModelError",
    "StateVar",
    "UserNeuron",
    "UserSynapse",
    "parse_expression",
    "symbol",
]
