"""Typed errors. The CLI layer maps each fatal one to its exit code, in one place."""

from __future__ import annotations

import ast
from collections.abc import Sequence


class FatalError(Exception):
    """A condition that stops the program; `exit_code` is what the process exits with."""

    exit_code = 1


class ConfigError(FatalError):
    """Bad flag, environment value or root path."""

    exit_code = 2


class AwsCliMissing(FatalError):
    exit_code = 3


class AccessError(FatalError):
    """AWS access could not be validated (no or invalid credentials, endpoint unreachable)."""

    exit_code = 4


class AlreadyRunning(FatalError):
    """Another daemon holds the lock on the same root directory."""

    exit_code = 5


class AwsCliError(Exception):
    """One failed `aws` invocation: the command, its exit code (None when the watchdog or a
    stop ended it) and stderr."""

    def __init__(
        self,
        command: Sequence[str],
        exit_code: int | None,
        stderr: str,
        *,
        cancelled: bool = False,
    ) -> None:
        self.command = tuple(command)
        self.exit_code = exit_code
        self.stderr = stderr.strip()
        self.cancelled = cancelled  # ended by a stop, cleanly: not a failure of the file
        super().__init__(self.summary())

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    def summary(self) -> str:
        """The most useful single line of stderr (the CLI prints a blank line first)."""
        name = f"`aws {' '.join(self.command[:2])}`"
        if self.timed_out:
            return f"{name} timed out" + (f": {self.stderr}" if self.stderr else "")
        return f"{name} exited {self.exit_code}: {last_line(self.stderr)}"


def last_line(stderr: str) -> str:
    """The last non-blank line; an answer botocore could not parse, which it prints as a
    bytes literal (`b'Not Found'`) under "invalid XML received", as that answer's text."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no error output"
    line = lines[-1]
    if line[:2] in ("b'", 'b"') and len(lines) > 1 and "Unable to parse response" in lines[-2]:
        try:
            body = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            return line
        if isinstance(body, bytes):
            text = " ".join(body.decode("utf-8", "replace").split())[:200]
            return f"an answer that is not XML: {text or '(empty)'}"
    return line
