"""The one exception type for mistakes in user-written models."""


class ModelError(ValueError):
    """A model definition is invalid; the message names the field and repeats its expression."""
