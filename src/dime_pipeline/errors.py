"""The one exception type for mistakes a user can fix; the CLI prints it as a single line."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Bad input, configuration or environment: shown as one line, exit status 2, no traceback."""


def config_error(error: Any, what: str = "config") -> UserError:
    """One line naming the first invalid key of a pydantic ``ValidationError``."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "config"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    more = f" [+{error.error_count() - 1} more]" if error.error_count() > 1 else ""
    return UserError(f"{what} key '{key}': {first['msg']}{shown}{more}")


def one_line(error: BaseException) -> str:
    """An exception's message on one line (library messages may span several)."""
    return " ".join(str(error).split()) or type(error).__name__
