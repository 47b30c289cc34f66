"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with control characters (newlines included) shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class UserError(Exception):
    """A problem with the user's input (scenario, options, files).

    The CLI prints ``error: <message>`` on one line and exits with code 2;
    the message never contains a line break, even when it quotes user input.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(str(message)))


class ScenarioError(UserError):
    """A scenario file that cannot be read, parsed or validated."""
