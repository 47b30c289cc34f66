"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (scenario, options, files).

    The CLI prints ``error: <message>`` on one line and exits with code 2.
    """


class ScenarioError(UserError):
    """A scenario file that cannot be read, parsed or validated."""
