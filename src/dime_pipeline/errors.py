"""The one exception type for mistakes a user can fix; the CLI prints it as a single line."""


class UserError(Exception):
    """Bad input, configuration or environment: shown as one line, exit status 2, no traceback."""
