"""Settings that name a file or a folder: check that the path exists, is the right kind and can be used.

Errors name the setting and the path, and say what to do, so a folder given where a file is expected is
reported as a folder (not as a permissions or parse problem further down):

>>> check_path(Path("/etc/edge-inspector/tokens"), "token_file", "file")
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from edge.errors import ConfigError

Kind = Literal["file", "folder", "device"]  # device: a character device such as /dev/video0


def check_path(path: Path, setting: str, kind: Kind, *, writable: bool = False) -> os.stat_result:
    """``path`` (symlinks followed) must be a ``kind`` the daemon's user can read (and write, with ``writable``).

    Returns its ``stat`` so callers can check more (a token file's permissions) without a second lookup.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        parent = path.parent
        hint = "" if parent.is_dir() else f" (its folder {parent} does not exist either)"
        raise ConfigError(f"{setting} {path}: no such {kind}{hint}") from None
    except OSError as exc:
        raise ConfigError(f"{setting} {path}: cannot be opened ({exc.strerror or exc})") from None
    if kind == "file" and stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{setting} {path}: is a folder; {setting} must name a file")
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{setting} {path}: is not a regular file ({stat.filemode(st.st_mode)[0]}); name a file")
    if kind == "device" and not stat.S_ISCHR(st.st_mode):
        raise ConfigError(f"{setting} {path}: is not a device; name a V4L2 camera such as /dev/video0")
    if kind == "device":
        writable = True  # V4L2 opens the device read-write
    if kind == "folder" and not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{setting} {path}: is a file; {setting} must name a folder")
    need = os.R_OK | (os.X_OK if kind == "folder" else 0) | (os.W_OK if writable else 0)
    if not os.access(path, need):
        verb = "read and write" if writable else "read"
        raise ConfigError(
            f"{setting} {path}: this user (uid {os.geteuid()}) cannot {verb} it ({stat.filemode(st.st_mode)}, "
            f"owner uid {st.st_uid}); fix its owner or mode"
        )
    return st


__all__ = ["Kind", "check_path"]
