"""The one error type of the model engine: a message the user can act on (names the model or file)."""

from __future__ import annotations


class ModelError(Exception):
    """A model is missing, unreachable, corrupt or unusable; the message says which and what to do."""
