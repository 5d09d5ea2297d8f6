"""``edge serve --bundle DIR [--config FILE] [--listen HOST:PORT] [--metrics-listen HOST:PORT] …``.

Every key of the config file is also a flag (``queue_depth`` → ``--queue-depth``) and an environment
variable (``EDGE_QUEUE_DEPTH``). Precedence: flags > environment > TOML file > defaults. Cameras are
``[[cameras]]`` tables; one camera also comes from ``--camera-url`` etc. (``edge.serve.camera_config``).
"""

from __future__ import annotations

import argparse
from dataclasses import fields


def configure(p: argparse.ArgumentParser) -> None:
    from edge.serve.camera_config import SINGLE
    from edge.serve.config import ServeConfig  # stdlib only: keeps --help instant

    p.add_argument("--config", help="TOML file with a [serve] table (see deploy/edge-inspector.toml)")
    for f in fields(ServeConfig):
        if f.name == "cameras":
            continue  # [[cameras]] tables; one camera also from the --camera-* flags below
        flag = "--" + f.name.replace("_", "-")
        if str(f.type) == "bool":
            p.add_argument(
                flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=f"(default {f.default})"
            )
        else:
            p.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=f"(default {f.default})")
    cams = p.add_argument_group(
        "one camera", "a camera the daemon pulls itself; overrides the [[cameras]] entry with the same id, if any"
    )
    for key in SINGLE:
        cams.add_argument(f"--camera-{key.replace('_', '-')}", dest=f"camera_{key}", default=None, metavar=key.upper())


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from edge.serve.camera_config import SINGLE
    from edge.serve.config import ServeConfig, load_config
    from edge.serve.files import check_path
    from edge.serve.server import run as serve

    flags = {f.name: getattr(args, f.name) for f in fields(ServeConfig) if f.name != "cameras"}
    flags |= {f"camera_{key}": getattr(args, f"camera_{key}") for key in SINGLE}
    toml = Path(args.config) if args.config else None
    if toml is not None:
        check_path(toml, "--config", "file")  # a folder is named as a folder, not as unreadable TOML
    # the daemon checks every file, credential and port it names before it loads the bundle, then logs it
    return serve(load_config(flags, os.environ, toml))
