"""Generates the Ansible role's unit template from the reference unit, so the two cannot drift apart.

Run ``python deploy/systemd/build_role_unit.py`` after editing ``deploy/systemd/edge-inspector.service``;
tests/deploy/test_systemd.py fails when the committed template differs from this script's output, and
checks that the template rendered with the role's defaults has exactly the reference unit's directives.
Stdlib only, so it runs anywhere without the venv.

The template is the reference unit, comments included, with a new header and the values in ``TEMPLATED``
replaced by role variables: nothing else may differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "deploy" / "systemd" / "edge-inspector.service"
TEMPLATE = ROOT / "ansible" / "roles" / "edge_inspector" / "templates" / "edge-inspector.service.j2"

#: Directive → its value in the template. With the role's defaults each renders to the reference value.
TEMPLATED: dict[str, str] = {
    "ExecStart": "{{ _edge_inspector_exec_start }}",  # the release layout under edge_inspector_prefix
    "TimeoutStopSec": "{{ (edge_inspector_grace_seconds | float + 15) | int }}s",  # the drain + 15 s
    "User": "{{ edge_inspector_user }}",
    "Group": "{{ edge_inspector_group }}",
    "ReadOnlyPaths": "-{{ edge_inspector_prefix }}/releases",
    "ReadWritePaths": "{{ edge_inspector_state_dir }}",  # the journal and evidence (serve.state_dir)
    "WorkingDirectory": "{{ edge_inspector_prefix }}",
    "MemoryHigh": "{{ edge_inspector_memory_high }}",  # stations with more or less than 16 GiB
    "MemoryMax": "{{ edge_inspector_memory_max }}",
}

HEADER = """\
# {{ ansible_managed }}
# edge-inspector station daemon (`edge serve`), hardened. Generated from deploy/systemd/edge-inspector.service
# (the reference unit) by deploy/systemd/build_role_unit.py: edit the reference and re-run the script.
# Only these values come from the role's variables:
#   %s.
"""


def render(reference: str) -> str:
    """The role's template: ``reference`` with the header replaced and each TEMPLATED value swapped in."""
    if any(mark in reference for mark in ("{{", "{%", "{#")):
        raise ValueError(f"{REFERENCE.name} must not contain Jinja markup")
    _, sep, body = reference.partition("\n[Unit]\n")
    if not sep:
        raise ValueError(f"{REFERENCE.name} has no [Unit] section")
    lines = []
    seen: dict[str, int] = {}
    for line in ("[Unit]\n" + body).splitlines():
        key, eq, _ = line.partition("=")
        if eq and not line.startswith(("#", ";")) and key in TEMPLATED:
            seen[key] = seen.get(key, 0) + 1
            line = f"{key}={TEMPLATED[key]}"
        lines.append(line)
    wrong = {key: seen.get(key, 0) for key in TEMPLATED if seen.get(key, 0) != 1}
    if wrong:
        raise ValueError(f"each templated directive must appear exactly once in {REFERENCE.name}: {wrong}")
    return HEADER % ", ".join(TEMPLATED) + "\n" + "\n".join(lines) + "\n"


def main() -> int:
    TEMPLATE.write_text(render(REFERENCE.read_text()))
    print(f"wrote {TEMPLATE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
