"""One exception type for every failure a user can fix."""

from __future__ import annotations


class BqxError(Exception):
    """A failure with one clear message naming what to fix.

    The CLI prints ``bqx: error: <message>`` and exits with ``exit_code``.
    Messages must never contain secrets (passwords, tokens, keys).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
