"""The error model: what went wrong, and whose problem it is.

The CLI maps each class to an exit code (see README, "Exit codes"). Messages are written for the officer who runs
the tool: they name the file, layer, feature and field, and say what to do.
"""
from __future__ import annotations


class ZoningError(Exception):
    """Base class for every error the tool reports without a traceback."""

    exit_code = 3

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class UsageError(ZoningError):
    """The command line or a configuration file is wrong (exit code 2)."""

    exit_code = 2


class DataError(ZoningError):
    """An input file is missing, unreadable or holds bad data (exit code 1)."""

    exit_code = 1


class ConfigError(UsageError):
    """A model, rules or project TOML file is invalid; ``problems`` lists every key path at fault."""


class OutputError(ZoningError):
    """An output cannot be written (exists without --overwrite, not writable) (exit code 4)."""

    exit_code = 4


class Cancelled(ZoningError):
    """The caller's progress callback asked to stop (exit code 130, like Ctrl-C); nothing was written."""

    exit_code = 130
