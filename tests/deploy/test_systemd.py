"""deploy/systemd/edge-inspector.service: real systemd-analyze verify and security; the unit against the config,
the memory plan and the Ansible role's template (generated from it)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.tools import required_tool

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "edge-inspector.service"
CONFIG = ROOT / "deploy" / "edge-inspector.toml"
ROLE_TEMPLATE = ROOT / "ansible" / "roles" / "edge_inspector" / "templates" / "edge-inspector.service.j2"
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    return required_tool("systemd-analyze", "systemd")


def directives(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of a repeated key in order (sections merged)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def seconds(value: str) -> float:
    """A systemd time span such as ``45s``, ``5min`` or ``1min 30s`` in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value))


UNIT_DIRECTIVES = directives(UNIT.read_text())


def one(key: str) -> str:
    (value,) = UNIT_DIRECTIVES[key]
    return value


def with_existing_binary(tmp_path: Path, text: str) -> Path:
    """A copy of the unit whose ExecStart binary exists on this machine.

    ``systemd-analyze verify`` reports a missing ExecStart binary, and /opt/edge-inspector only exists on a
    station. Swapping that one path for an executable that exists keeps every other line checked as is.
    """
    binary = shlex.split(one("ExecStart"))[0]
    replaced = text.replace(f"ExecStart={binary} ", f"ExecStart={shutil.which('true')} ")
    assert replaced != text
    copy = tmp_path / UNIT.name  # verify derives the unit's name and type from the file name
    copy.write_text(replaced)
    return copy


def verify(systemd_analyze: str, unit: Path) -> str:
    # verify exits 0 even on invalid values ("Invalid memory limit 'lots', ignoring"): its output is the verdict.
    proc = subprocess.run([systemd_analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True)
    return (proc.stdout + proc.stderr).strip()


def test_verify_prints_nothing(systemd_analyze: str, tmp_path: Path) -> None:
    assert verify(systemd_analyze, with_existing_binary(tmp_path, UNIT.read_text())) == ""


def test_verify_would_report_a_bad_value(systemd_analyze: str, tmp_path: Path) -> None:
    # Guards the test above against a verify that checks nothing on this machine.
    bad = UNIT.read_text().replace(f"MemoryMax={one('MemoryMax')}\n", "MemoryMax=lots\n")
    assert "Invalid memory limit 'lots'" in verify(systemd_analyze, with_existing_binary(tmp_path, bad))


def test_security_exposure_is_low(systemd_analyze: str) -> None:
    # stderr names the ExecStart binary missing on this machine; the score does not depend on it.
    proc = subprocess.run(
        [systemd_analyze, "security", "--offline=true", "--no-pager", str(UNIT)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for edge-inspector\.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_exec_start_is_a_valid_edge_serve_command_line() -> None:
    from edge.cli.serve_cmd import configure

    binary, command, *args = shlex.split(one("ExecStart"))
    assert (Path(binary).name, command) == ("edge", "serve")
    parser = argparse.ArgumentParser()
    configure(parser)
    ns = parser.parse_args(args)
    # deploy/edge-inspector.toml names where it is installed; the unit must start the daemon with that file.
    assert ns.config == "/etc/edge-inspector/edge-inspector.toml"
    assert f"--config {ns.config}" in CONFIG.read_text()


def test_stop_timeout_covers_the_drain() -> None:
    grace = tomllib.loads(CONFIG.read_text())["serve"].get("grace_seconds", 30.0)
    assert one("KillSignal") == "SIGTERM"
    assert seconds(one("TimeoutStopSec")) >= grace + 10


def test_bundle_lives_in_the_read_only_releases() -> None:
    bundle = Path(tomllib.loads(CONFIG.read_text())["serve"]["bundle"])  # <prefix>/current/bundle
    prefix = bundle.parent.parent
    assert f"-{prefix}/releases" in UNIT_DIRECTIVES["ReadOnlyPaths"]
    assert one("ExecStart").startswith(f"{prefix}/current/venv/bin/edge serve")


def size(value: str) -> float:
    """A systemd byte size such as ``13G`` or ``13056M`` (base 1024) in bytes."""
    if value[-1] in "KMGT":
        return float(value[:-1]) * 1024 ** ("KMGT".index(value[-1]) + 1)
    return float(value)


def test_memory_limits_come_from_the_12b_plan() -> None:
    # The unit's comment: MemoryMax = the plan's usable memory; MemoryHigh 256 MiB below it and above the
    # plan's total plus its 10% tolerance. `edge plan` is the one place these figures come from.
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "plan", "--preset", "12b", "--quant", "int4", "--context", "4096", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    plan = json.loads(proc.stdout)
    high, limit = size(one("MemoryHigh")), size(one("MemoryMax"))
    assert limit == plan["usable_bytes"]
    assert high == limit - 256 * 2**20
    assert plan["total_bytes"] * 1.10 < high
    assert one("MemorySwapMax") == "0"


def _build_role_unit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_role_unit", UNIT.parent / "build_role_unit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_role_template_is_generated_from_the_reference_unit() -> None:
    builder = _build_role_unit()
    assert ROLE_TEMPLATE.read_text() == builder.render(UNIT.read_text()), (
        "run: python deploy/systemd/build_role_unit.py"
    )


def test_role_template_with_the_role_defaults_is_the_reference_unit() -> None:
    """Directive by directive: the only differences are the TEMPLATED values, and the defaults give the reference's."""
    jinja2 = pytest.importorskip("jinja2")
    pytest.importorskip("jinja2.meta")
    yaml = pytest.importorskip("yaml")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    role = ROLE_TEMPLATE.parents[1]
    values = {**yaml.safe_load((role / "defaults" / "main.yml").read_text()), "ansible_managed": "managed"}
    private = yaml.safe_load((role / "vars" / "main.yml").read_text())

    def resolve(name: str) -> None:  # a private var the template uses, after the vars it refers to
        if name not in values:
            for dependency in jinja2.meta.find_undeclared_variables(env.parse(private[name])):
                resolve(dependency)
            values[name] = env.from_string(private[name]).render(values)

    for name in jinja2.meta.find_undeclared_variables(env.parse(ROLE_TEMPLATE.read_text())):
        resolve(name)
    rendered = directives(env.from_string(ROLE_TEMPLATE.read_text()).render(values))
    assert rendered == UNIT_DIRECTIVES
    assert "ConfigurationDirectory" not in rendered  # the role owns /etc/edge-inspector (see the unit's comment)


def test_environment_and_w_x() -> None:
    assert "PROMETHEUS_DISABLE_CREATED_SERIES=True" in UNIT_DIRECTIVES["Environment"]
    assert one("MemoryDenyWriteExecute") == "yes"


def syscalls_of(systemd_analyze: str, name: str, seen: dict[str, set[str]]) -> set[str]:
    """The system calls a SystemCallFilter entry names: ``@group``s expanded (recursively) by systemd itself."""
    if not name.startswith("@"):
        return {name}
    if name not in seen:
        out = subprocess.run([systemd_analyze, "syscall-filter", name], capture_output=True, text=True, check=True)
        seen[name] = set()
        for line in out.stdout.splitlines()[1:]:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                seen[name] |= syscalls_of(systemd_analyze, entry, seen)
    return seen[name]


def allowed_syscalls(systemd_analyze: str) -> set[str]:
    """The unit's SystemCallFilter lines in order, as systemd merges them: an allow list, ``~`` removes, a later
    plain line adds back."""
    seen: dict[str, set[str]] = {}
    allowed: set[str] | None = None
    for value in UNIT_DIRECTIVES["SystemCallFilter"]:
        names = set().union(*(syscalls_of(systemd_analyze, n, seen) for n in value.lstrip("~").split()))
        if allowed is None:
            assert not value.startswith("~"), "the unit's first SystemCallFilter is an allow list"
            allowed = names
        elif value.startswith("~"):
            allowed -= names
        else:
            allowed |= names
    assert allowed is not None
    return allowed


LOWER = """
import os, sys
from edge.journal.publisher_main import _lower_priority
os.write(2, b"edge-mark\\n")
_lower_priority()
os.write(2, b"edge-mark\\n")
print(os.getpriority(os.PRIO_PROCESS, 0))
"""


def test_the_publisher_lowers_its_priority_within_the_unit_filter(systemd_analyze: str, tmp_path: Path) -> None:
    """Every system call the MQTT publisher's process makes to lower its priority (traced by strace) is one the
    unit's seccomp filter allows, or under systemd it would run at the daemon's priority; and the rest of
    @resources (affinity, memory policy, scheduler class) stays refused."""
    strace = required_tool("strace", "strace")
    trace = tmp_path / "trace"
    proc = subprocess.run(
        [strace, "-f", "-qq", "-o", str(trace), sys.executable, "-c", LOWER],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert int(proc.stdout) == 10 + os.getpriority(os.PRIO_PROCESS, 0)
    lines = trace.read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if "edge-mark" in line]
    assert len(marks) == 2, lines
    called = {m.group(1) for line in lines[marks[0] + 1 : marks[1]] if (m := re.match(r"(?:\d+\s+)?(\w+)\(", line))}
    assert "setpriority" in called
    allowed = allowed_syscalls(systemd_analyze)
    assert called <= allowed, f"refused by the unit's SystemCallFilter: {sorted(called - allowed)}"
    assert {"sched_setaffinity", "set_mempolicy", "sched_setscheduler", "setrlimit"}.isdisjoint(allowed)
