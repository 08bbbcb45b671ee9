"""Errors a person can fix, kept apart from bugs.

The CLI maps a :class:`UserError` to its message and exit code 2; anything else is a bug
and shows a traceback.
"""

from __future__ import annotations


class ExpedienteError(Exception):
    """Base of the daemon's own errors."""


class UserError(ExpedienteError):
    """Bad input from a person (arguments, files); the message says how to fix it."""

    exit_code = 2
