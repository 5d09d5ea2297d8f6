"""The in-process test daemon for CLI tests that talk to one."""

from tests.serve.conftest import daemon, engine  # noqa: F401  (pytest fixtures, shared)
