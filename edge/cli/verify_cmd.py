"""``edge verify BUNDLE``: exit 0 only if every byte matches the manifest."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.bundle.verify import verify_bundle

    m = verify_bundle(Path(args.bundle))
    total = sum(int(f["size"]) for f in m.files.values())
    print(
        f"{args.bundle}: OK — bundle {m.bundle_id}, {len(m.files)} files, {total / 2**20:.1f} MiB, "
        f"quantization {m.quantization.get('name')}, schema {m.schema_version}"
    )
    return 0
