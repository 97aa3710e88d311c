"""Subcommands of ``dime-pipeline``: argument parsing only; the work happens in the library."""
