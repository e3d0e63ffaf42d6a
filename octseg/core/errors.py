"""Exceptions with messages meant for the user: one line, naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class OctsegError(Exception):
    """Base class: anything the CLI reports as a one-line error rather than a traceback."""


class InputError(OctsegError):
    """A file or array that cannot be used, with the file named in the message."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class MissingSpacingError(InputError):
    """Pixel or frame spacing is unknown; never assumed silently."""


class SchemaError(InputError):
    """A label file or table that does not follow its documented schema."""
