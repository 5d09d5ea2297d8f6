"""Model text for a terminal: control characters are shown as escapes instead of being sent to the terminal.

A model can generate any token, and a random-weight one generates bytes such as ESC or BEL that a terminal
would act on. ``edge run``, ``edge describe`` and the demo pass text through ``for_terminal`` when they
write to a terminal; piped output stays byte-exact for the programs that read it.

>>> for_terminal("ok\\x1b[2J\\x07 done\\n")
'ok\\\\x1b[2J\\\\x07 done\\n'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

KEEP = frozenset("\n\t")


def for_terminal(text: str) -> str:
    """``text`` with every character Python does not call printable (controls, format and unassigned code
    points, separators other than the space) except newline and tab written as ``\\xNN``/``\\uNNNN``."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in KEEP or ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def for_stream(stream: TextIO) -> Callable[[str], str]:
    """``for_terminal`` when ``stream`` is a terminal, else the text unchanged (``edge run``, ``edge describe``)."""
    return for_terminal if stream.isatty() else _unchanged


def _unchanged(text: str) -> str:
    return text


__all__ = ["for_stream", "for_terminal"]
