"""Safe parsing of user expression strings into sympy.

User text is parsed with ``ast.parse(..., mode="eval")`` and walked by a visitor that accepts only names,
numbers, arithmetic and calls of whitelisted functions, building sympy objects directly. Nothing the user
wrote is ever evaluated as Python (``sympify`` would), and names such as ``beta`` or ``E`` stay plain
symbols instead of colliding with sympy's own objects.
"""

import ast
import math
import numbers
import warnings
from typing import NoReturn

import numpy as np
import sympy

from .errors import ModelError

ALLOWED_FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "atan": sympy.atan,
    "abs": sympy.Abs,
    "min": sympy.Min,
    "max": sympy.Max,
    "pow": sympy.Pow,
}

# (fewest, most) positional arguments; None means no upper bound. Functions not listed take one.
_ARITY = {"min": (2, None), "max": (2, None), "pow": (2, 2)}

# Exponents above this, with a numeric base, are evaluated in floating point: '9**9**9' must not make
# sympy build an exact integer with hundreds of millions of digits.
_EXACT_POWER_LIMIT = 64

_BINARY_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: _power(a, b),
}

_OPERATOR_SYMBOLS = {
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
}

_CONSTRUCTS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "a lambda",
    ast.BoolOp: "a boolean operator ('and'/'or')",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.Starred: "a starred argument",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
}

_FUNCTION_LIST = ", ".join(ALLOWED_FUNCTIONS)
_ALLOWED_SUMMARY = (
    f"expressions may use only names, numbers, + - * / **, parentheses and calls of {_FUNCTION_LIST}"
)


def symbol(name: str) -> sympy.Symbol:
    """The one way to make a symbol, so that every part of eventgrad agrees on symbol equality."""
    return sympy.Symbol(name, real=True)


def free_names(expr: sympy.Expr) -> set[str]:
    """Names of the free symbols of ``expr``."""
    return {s.name for s in expr.free_symbols}


def parse_expression(text: str | float, *, where: str, allow_comparison: bool = False) -> sympy.Expr:
    """Parse a user expression (or a plain number) into sympy without evaluating any Python.

    ``where`` describes the expression in error messages ("the threshold of this neuron"). With
    ``allow_comparison``, one top-level comparison is accepted and turned into a function that crosses
    zero from below when the condition becomes true: ``a >= b`` and ``a > b`` give ``a - b``,
    ``a <= b`` and ``a < b`` give ``b - a``.
    """
    if not isinstance(text, str):
        return _parse_number(text, where)
    source = text.strip()
    if not source:
        raise ModelError(f"{where} is an empty string; write an expression such as 'v - 1.0'")
    try:
        with warnings.catch_warnings():  # Python warns about escapes such as '\+' in what it will refuse anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ModelError(_syntax_message(source, where, err)) from err
    except (RecursionError, MemoryError) as err:
        raise ModelError(f"cannot parse {where}, '{_shortened(source)}': it is nested too deeply") from err
    try:
        expr = _Builder(source, where, allow_comparison).build(tree)
    except ZeroDivisionError as err:
        raise ModelError(f"cannot parse {where}, '{_shortened(source)}': it divides by zero") from err
    except OverflowError as err:
        raise ModelError(f"cannot parse {where}, '{_shortened(source)}': a constant in it overflows") from err
    except RecursionError as err:
        raise ModelError(f"cannot parse {where}, '{_shortened(source)}': it is nested too deeply") from err
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ModelError(f"cannot parse {where}, '{source}': it evaluates to an infinite or undefined value")
    if any(not math.isfinite(float(a)) for a in expr.atoms(sympy.Number)):
        raise ModelError(f"cannot parse {where}, '{_shortened(source)}': a constant in it overflows float64")
    if expr.has(sympy.I):
        raise ModelError(f"cannot parse {where}, '{source}': it has a complex (not real) value, such as "
                         "sqrt or log of a negative number")
    return expr


def _shortened(source: str, most: int = 200) -> str:
    """The expression as error messages quote it: long ones cut in the middle."""
    return source if len(source) <= most else f"{source[:most // 2]} ... {source[-most // 2:]}"


def _parse_number(value, where: str) -> sympy.Expr:
    """Numbers stand for constant expressions (mlGeNN models often write resets as numbers)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ModelError(f"{where} must be an expression string or a number, not {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if not np.isfinite(float(value)):
        raise ModelError(f"{where} is {float(value)}; it must be finite")
    return sympy.Float(float(value))


def _syntax_message(source: str, where: str, err: SyntaxError) -> str:
    """A message that shows the offending line with a caret under the column of the error."""
    if len(source) > 200:  # no caret under a line that long
        return f"cannot parse {where}, '{_shortened(source)}': {err.msg}"
    lines = source.splitlines() or [source]
    lineno = min(max(err.lineno or 1, 1), len(lines))
    line = lines[lineno - 1]
    offset = err.offset if err.offset and 0 < err.offset <= len(line) + 1 else len(line) + 1
    caret = " " * (offset - 1) + "^"
    return "\n    ".join([f"cannot parse {where}, '{source}': {err.msg}", line, caret])


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent``, in floating point when both are numbers and the exponent is large."""
    if base.is_Number and exponent.is_Number and abs(exponent) > _EXACT_POWER_LIMIT:
        try:
            return sympy.Float(float(base) ** float(exponent))
        except (OverflowError, ZeroDivisionError):
            return sympy.zoo  # reported by parse_expression as not finite
    return base**exponent


class _Builder:
    """Walks a parsed expression and builds the sympy object for each accepted node."""

    def __init__(self, source: str, where: str, allow_comparison: bool):
        self.source = source
        self.where = where
        self.allow_comparison = allow_comparison

    def build(self, tree: ast.Expression) -> sympy.Expr:
        body = tree.body
        if isinstance(body, ast.Compare) and self.allow_comparison:
            return self._comparison(body)
        return self.visit(body)

    def visit(self, node: ast.AST) -> sympy.Expr:
        method = getattr(self, f"_visit_{type(node).__name__}", None)
        if method is None:
            self._reject(node, _CONSTRUCTS.get(type(node), f"'{type(node).__name__}' syntax"))
        return method(node)

    def _reject(self, node: ast.AST, construct: str, hint: str = _ALLOWED_SUMMARY) -> NoReturn:
        segment = ast.get_source_segment(self.source, node) or self.source
        raise ModelError(
            f"cannot parse {self.where}, '{self.source}': {construct} '{segment}' is not allowed; {hint}"
        )

    def _comparison(self, node: ast.Compare) -> sympy.Expr:
        if len(node.ops) != 1:
            self._reject(node, "a chained comparison", "write one comparison such as 'v >= v_thresh'")
        op = node.ops[0]
        left, right = self.visit(node.left), self.visit(node.comparators[0])
        if isinstance(op, (ast.GtE, ast.Gt)):
            return left - right
        if isinstance(op, (ast.LtE, ast.Lt)):
            return right - left
        self._reject(node, "the comparison", "use one of >=, >, <=, <")

    def _visit_Compare(self, node: ast.Compare) -> sympy.Expr:
        if len(node.ops) != 1:
            self._reject(node, "a chained comparison", "write one comparison such as 'v >= v_thresh'")
        if self.allow_comparison:
            hint = "a comparison may only be the whole expression, as in 'v >= v_thresh'"
        else:
            hint = "comparisons are only allowed in thresholds"
        self._reject(node, "a comparison", hint)

    def _visit_Constant(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or value is None:
            self._reject(node, f"the constant {value}")
        if isinstance(value, int):
            return self._finite(node, sympy.Integer(value))
        if isinstance(value, float):
            return sympy.Float(value)
        kind = {str: "a string", bytes: "a bytes literal", complex: "a complex number"}.get(
            type(value), "the constant"
        )
        self._reject(node, kind)

    def _visit_Name(self, node: ast.Name) -> sympy.Expr:
        if node.id.startswith("_"):
            self._reject(node, "the name", "names starting with '_' are reserved")
        if node.id in ALLOWED_FUNCTIONS:
            self._reject(node, "the function name", f"call it, as in '{node.id}(x)'")
        return symbol(node.id)

    def _visit_UnaryOp(self, node: ast.UnaryOp) -> sympy.Expr:
        if isinstance(node.op, ast.USub):
            return -self.visit(node.operand)
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand)
        self._reject(node, f"the operator '{_OPERATOR_SYMBOLS.get(type(node.op), '?')}' in")

    def _visit_BinOp(self, node: ast.BinOp) -> sympy.Expr:
        # a long sum 'a + b + c + ...' nests to the left, one level per term: walked in a loop, not by recursion
        # (a 500-term sum would exceed Python's recursion limit)
        chain = []
        while isinstance(node, ast.BinOp):
            chain.append(node)
            node = node.left
        value = self.visit(node)
        for link in reversed(chain):
            if isinstance(link.op, ast.BitXor):
                self._reject(link, "the operator '^' in", "use '**' for powers, as in 'v**2'")
            operator = _BINARY_OPERATORS.get(type(link.op))
            if operator is None:
                self._reject(link, f"the operator '{_OPERATOR_SYMBOLS.get(type(link.op), '?')}' in")
            value = self._finite(link, operator(value, self.visit(link.right)))
        return value

    def _finite(self, node: ast.AST, value: sympy.Expr) -> sympy.Expr:
        """``value``, unless it is a number that float64 cannot hold (refused here, at once: sympy would go on
        computing with it, 'exp(-exp(1e6))' for a minute)."""
        if value.is_Number and value.is_finite and not math.isfinite(float(value)):
            self._reject(node, "the constant", "its value overflows float64")
        return value

    def _visit_Call(self, node: ast.Call) -> sympy.Expr:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name is None:
            self._reject(node, "the call")
        if name not in ALLOWED_FUNCTIONS:
            self._reject(node, "the call", f"'{name}' is not one of the functions {_FUNCTION_LIST}")
        if node.keywords:
            self._reject(node, "the call", "keyword arguments are not supported; pass arguments by position")
        fewest, most = _ARITY.get(name, (1, 1))
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            wanted = f"{fewest}" if fewest == most else f"at least {fewest}"
            self._reject(node, "the call", f"{name} takes {wanted} argument(s), got {count}")
        return self._finite(node, ALLOWED_FUNCTIONS[name](*(self.visit(arg) for arg in node.args)))
