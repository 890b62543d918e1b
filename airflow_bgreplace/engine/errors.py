"""Exceptions raised by the local engine."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the local engine raises on purpose."""


class EngineInputError(EngineError, ValueError):
    """An input cannot be used: not an image, truncated, too small, too large, bad parameter.

    ``which`` names the input (``image``, ``reference``, a parameter name) and ``cause`` is a
    short machine-readable reason (``decode``, ``truncated``, ``too_small``, ``too_large``,
    ``animated``, ``parameter``), so callers can map it to their own error codes without parsing
    the message.
    """

    def __init__(self, message: str, *, which: str = "image", cause: str = "decode") -> None:
        super().__init__(message)
        self.which = which
        self.cause = cause

    @property
    def too_large(self) -> bool:
        return self.cause == "too_large"
