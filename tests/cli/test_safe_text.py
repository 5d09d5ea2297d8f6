"""Generated text on a terminal: control characters escaped; in a pipe: unchanged."""

from __future__ import annotations

import io
import os

from edge.cli.safe_text import for_stream, for_terminal


def test_control_characters_are_escaped_and_text_is_kept() -> None:
    text = "ok\x1b[2J\x07\x00\x7f\x9b done\n\tnext\u2028é 🔩 �"
    assert for_terminal(text) == "ok\\x1b[2J\\x07\\x00\\x7f\\x9b done\n\tnext\\u2028é 🔩 �"
    assert for_terminal("plain text") == "plain text"


def test_only_a_terminal_gets_escapes() -> None:
    assert for_stream(io.StringIO())("\x1b[2J") == "\x1b[2J"  # a pipe or file: byte-exact
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty:
            assert for_stream(tty)("\x1b[2J") == "\\x1b[2J"
    finally:
        os.close(leader)
        os.close(follower)
