"""The Ansible role and playbooks, run for real: ansible-playbook against three local hosts, each with its own
prefix and ports, a real wheel of this repo and a real tiny bundle; the daemons are started by the role's
edge-inspector-ctl (systemd is not PID 1 here), with the unit's exact ExecStart."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveProgress

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
ROLE = ANSIBLE / "roles" / "edge_inspector"
VENV_BIN = REPO / ".venv-ansible" / "bin"
HOSTS = ("s1", "s2", "s3")
OLD, NEW = "0.1.0", "0.1.1"

pytestmark = pytest.mark.slow


def _require_ansible() -> None:
    if not (VENV_BIN / "ansible-playbook").exists():
        msg = f"{VENV_BIN}/ansible-playbook missing: scripts/env creates .venv-ansible (ansible-core, ansible-lint)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wheel(version: str, out: Path) -> Path:
    """A real wheel of this repo, built from a copy so the work tree gets no build/ folder; `version` patched in."""
    src = out / f"src-{version}"
    shutil.copytree(REPO / "edge", src / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    init = src / "edge" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text()))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(out)],
        check=True,
    )
    return next(out.glob(f"edge_inspector-{version}-*.whl"))


def _deps_dir(out: Path) -> Path:
    """The daemon's dependencies, offline: this venv's site-packages without edge itself (symlinks)."""
    import grpc

    site = Path(grpc.__file__).resolve().parents[1]
    out.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(("edge", "__editable__", "_edge")) or entry.suffix == ".pth":
            continue
        (out / entry.name).symlink_to(entry)
    return out


class Fleet:
    def __init__(self, root: Path, bundle: Path, progress: LiveProgress) -> None:
        self.root = root
        self.bundle = bundle
        self.progress = progress
        wheels = root / "wheels"
        wheels.mkdir()
        progress(f"building wheels {OLD} and {NEW} of this repo")
        self.wheels = {v: _wheel(v, wheels) for v in (OLD, NEW)}
        self.deps = _deps_dir(root / "deps")
        self.ports = {h: (_free_port(), _free_port()) for h in HOSTS}
        self.inventory = root / "inventory.yml"

    def prefix(self, host: str) -> Path:
        return self.root / host / "opt"

    def state(self, host: str) -> Path:
        return self.root / host / "state"

    def write_inventory(self, version: str, bundles: dict[str, Path] | None = None) -> None:
        hosts: dict[str, Any] = {}
        for h in HOSTS:
            grpc_port, metrics_port = self.ports[h]
            (self.root / h / "systemd").mkdir(parents=True, exist_ok=True)  # /etc/systemd/system exists on a station
            hosts[h] = {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(VENV_BIN / "python"),
                "edge_inspector_prefix": str(self.prefix(h)),
                "edge_inspector_config_dir": str(self.root / h / "etc"),
                "edge_inspector_systemd_dir": str(self.root / h / "systemd"),
                "edge_inspector_listen": f"127.0.0.1:{grpc_port}",
                "edge_inspector_metrics_listen": f"127.0.0.1:{metrics_port}",
                "edge_inspector_bundle_src": str((bundles or {}).get(h, self.bundle)),
                "edge_inspector_station": f"st-{h}",
                "edge_inspector_line": "line-a",
                "edge_inspector_state_dir": str(self.state(h)),
            }
        group_vars = {
            "edge_inspector_version": version,
            "edge_inspector_wheel": str(self.wheels[version]),
            "edge_inspector_wheel_sha256": _sha256(self.wheels[version]),
            "edge_inspector_bundle_manifest_sha256": _sha256(self.bundle / "manifest.json"),
            "edge_inspector_python": getattr(sys, "_base_executable", sys.executable),
            "edge_inspector_extra_site_dirs": [str(self.deps)],
            "edge_inspector_manage_service": False,
            "edge_inspector_create_user": False,
            "edge_inspector_grace_seconds": 5.0,
            "edge_inspector_check_retries": 90,
        }
        inv = {"all": {"children": {"edge_inspectors": {"vars": group_vars, "hosts": hosts}}}}
        self.inventory.write_text(yaml.safe_dump(inv))

    def playbook(self, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(self.root / ".ansible-tmp"),
            "ANSIBLE_HOME": str(self.root / ".ansible"),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        }
        r = self._run([str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), str(ANSIBLE / name), *args], env)
        if ok and r.returncode != 0:
            pytest.fail(f"ansible-playbook {name} {args} exited {r.returncode}\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}")
        return r

    def _run(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """ansible-playbook with its output collected, and its current task reported live while it runs."""
        label = "ansible-playbook " + " ".join(Path(a).name if a.startswith("/") else a for a in argv[3:])
        self.progress(f"{label}: started")
        out: list[str] = []
        err: list[str] = []
        task = ["starting"]
        with subprocess.Popen(
            argv, cwd=ANSIBLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:  # closes the pipes when done

            def read_out() -> None:
                assert proc.stdout is not None
                for line in proc.stdout:
                    out.append(line)
                    if line.startswith(("TASK [", "PLAY [", "RUNNING HANDLER [")):
                        task[0] = line.split(" *", 1)[0].strip()

            read_err = threading.Thread(target=lambda: err.extend(proc.stderr or ()))
            readers = [threading.Thread(target=read_out), read_err]
            for reader in readers:
                reader.start()
            with self.progress.ticker(label, lambda: f"at {task[0]}"):
                try:
                    proc.wait(timeout=900)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for reader in readers:
                reader.join()
        self.progress(f"{label}: exit {proc.returncode}")
        return subprocess.CompletedProcess(argv, proc.returncode, "".join(out), "".join(err))

    def kill_all(self) -> None:
        for h in HOSTS:
            pidfile = self.prefix(h) / "run" / "edge-inspector.pid"
            if pidfile.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pidfile.read_text()), signal.SIGKILL)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", stdout.split("PLAY RECAP", 1)[1], re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def served_version(fleet: Fleet, host: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{fleet.ports[host][1]}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'^edge_inspector_build_info\{[^}]*version="([^"]+)"', text, re.M)
    assert m, text[:2000]
    return m.group(1)


def serving(fleet: Fleet, host: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{fleet.ports[host][0]}") as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(r.status == health_pb2.HealthCheckResponse.SERVING)


def wait_serving(fleet: Fleet, host: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if serving(fleet, host):
                return
        except Exception:
            if time.monotonic() > deadline:
                log = fleet.prefix(host) / "log" / "edge-inspector.log"
                raise AssertionError(f"{host} not SERVING: {log.read_text()[-3000:] if log.exists() else ''}") from None
        time.sleep(0.5)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, fp32_bundle: Path, progress: LiveProgress) -> Iterator[Fleet]:
    _require_ansible()
    f = Fleet(tmp_path_factory.mktemp("fleet"), fp32_bundle, progress)
    yield f
    f.kill_all()


# --- static checks ---------------------------------------------------------------------------------------


def test_argument_specs_equal_defaults() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert list(options) == list(defaults)
    types = {"str": str, "bool": bool, "int": int, "float": float, "list": list, "dict": dict}
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name
        assert type(defaults[name]) is types[spec["type"]], name
        assert spec.get("description"), name
    private = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert all(k.startswith("_edge_inspector_") for k in private)


def test_syntax_check(tmp_path: Path) -> None:
    _require_ansible()
    for book in ("site.yml", "rollout.yml", "rollback.yml", "prometheus_targets.yml"):
        r = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(ANSIBLE / "inventory.example.yml"), "--syntax-check", book],
            cwd=ANSIBLE,
            capture_output=True,
            text=True,
            env={**os.environ, "ANSIBLE_HOME": str(tmp_path)},
        )
        assert r.returncode == 0, r.stdout + r.stderr


def test_ansible_lint_production(tmp_path: Path, progress: LiveProgress) -> None:
    _require_ansible()
    with progress.ticker("ansible-lint --profile production", lambda: "linting"):
        r = subprocess.run(
            [str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor", "--profile", "production", "."],
            cwd=ANSIBLE,
            capture_output=True,
            text=True,
            env={**os.environ, "ANSIBLE_HOME": str(tmp_path), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
        )
    assert r.returncode == 0, r.stdout + r.stderr


# --- real runs, in order: install, idempotence, check mode, upgrade with one bad host, rollback -------------


def test_install_serves(fleet: Fleet) -> None:
    fleet.write_inventory(OLD)
    fleet.playbook("site.yml")
    for h in HOSTS:
        wait_serving(fleet, h)
        assert served_version(fleet, h) == OLD
        prefix = fleet.prefix(h)
        assert os.readlink(prefix / "current") == str(prefix / "releases" / OLD)
        unit = (fleet.root / h / "systemd" / "edge-inspector.service").read_text()
        ctl = (prefix / "bin" / "edge-inspector-ctl").read_text()
        exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)  # type: ignore[union-attr]
        assert f"setsid {exec_start} >>" in ctl  # the daemon runs with the unit's exact command line
        assert "NoNewPrivileges=yes" in unit and f"ReadOnlyPaths=-{prefix}/releases" in unit


def test_second_run_changes_nothing(fleet: Fleet) -> None:
    r = fleet.playbook("site.yml")
    counts = recap(r.stdout)
    assert set(counts) == set(HOSTS)
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts


def test_check_diff_is_clean(fleet: Fleet) -> None:
    r = fleet.playbook("site.yml", "--check", "--diff")
    counts = recap(r.stdout)
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), r.stdout[-4000:]
    for h in HOSTS:
        assert serving(fleet, h)


def test_prometheus_targets(fleet: Fleet) -> None:
    out = fleet.root / "targets.json"
    fleet.playbook("prometheus_targets.yml", "-e", f"edge_inspector_file_sd_path={out}")
    targets = json.loads(out.read_text())
    assert [t["labels"]["station"] for t in targets] == ["st-s1", "st-s2", "st-s3"]
    assert targets[0]["targets"] == [f"s1:{fleet.ports['s1'][1]}"]
    assert {t["labels"]["line"] for t in targets} == {"line-a"}


def test_upgrade_with_corrupt_bundle_rolls_that_host_back(fleet: Fleet) -> None:
    bad = fleet.root / "bad-bundle"
    shutil.copytree(fleet.bundle, bad)
    victim = max((p for p in bad.iterdir() if p.name != "manifest.json"), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    fleet.write_inventory(NEW, bundles={"s3": bad})  # same pinned manifest sha: only `edge verify` can catch it
    r = fleet.playbook("rollout.yml", ok=False)
    assert r.returncode != 0
    counts = recap(r.stdout)
    assert counts["s3"]["failed"] == 1 and counts["s1"]["failed"] == 0 and counts["s2"]["failed"] == 0, counts
    assert "rolled back to 0.1.0" in r.stdout
    for h, want in (("s1", NEW), ("s2", NEW), ("s3", OLD)):
        wait_serving(fleet, h)
        assert served_version(fleet, h) == want, h
    assert os.readlink(fleet.prefix("s3") / "current") == str(fleet.prefix("s3") / "releases" / OLD)
    assert os.readlink(fleet.prefix("s1") / "previous") == str(fleet.prefix("s1") / "releases" / OLD)


def test_rollback_restores_previous_release(fleet: Fleet) -> None:
    journal = fleet.state("s1") / "journal.db"
    before = journal.stat().st_ino  # the upgraded release journaled here
    fleet.playbook("rollback.yml", "--limit", "s1")
    wait_serving(fleet, "s1")
    assert journal.stat().st_ino == before  # the state folder is outside the releases: the rollback keeps it
    assert served_version(fleet, "s1") == OLD
    assert served_version(fleet, "s2") == NEW
    assert os.readlink(fleet.prefix("s1") / "previous") == str(fleet.prefix("s1") / "releases" / NEW)


def test_the_config_template_carries_the_mqtt_settings_to_the_daemon(tmp_path: Path) -> None:
    """The role's edge-inspector.toml, rendered by Ansible's own template module from the role's defaults plus a
    station's MQTT variables, is a config the daemon loads, with the broker, login and topics they name."""
    _require_ansible()
    from edge.serve.config import load_config
    from edge.serve.journaling import mqtt_settings

    station = {
        "ansible_python_interpreter": str(VENV_BIN / "python"),
        "edge_inspector_prefix": str(tmp_path / "opt"),
        "edge_inspector_version": "0.0.0",
        "edge_inspector_wheel": "edge_inspector-0.0.0-py3-none-any.whl",
        "edge_inspector_state_dir": str(tmp_path / "state"),
        "edge_inspector_line": "line-a",
        "edge_inspector_station": "st-7",
        "edge_inspector_mqtt_host": "broker.plant.local",
        "edge_inspector_mqtt_port": 8883,
        "edge_inspector_mqtt_username": "st7",
    }

    def render(**overrides: Any) -> Any:
        extra, out = tmp_path / "station.json", tmp_path / "edge-inspector.toml"
        extra.write_text(json.dumps(station | overrides))
        r = subprocess.run(
            [str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", "template",
             "-a", f"src={ROLE / 'templates' / 'edge-inspector.toml.j2'} dest={out}",
             "-e", f"@{ROLE / 'defaults' / 'main.yml'}", "-e", f"@{ROLE / 'vars' / 'main.yml'}", "-e", f"@{extra}"],
            capture_output=True, text=True, env={**os.environ, "ANSIBLE_HOME": str(tmp_path / ".ansible")},
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        return mqtt_settings(load_config({}, {}, out))

    plant = render(edge_inspector_mqtt_topic_prefix="acme/plant-3/inspection", edge_inspector_mqtt_normal_scores=False)
    assert (plant.address, plant.username) == ("broker.plant.local:8883", "st7")
    assert plant.topic == "acme/plant-3/inspection/line-a/st-7/events" and plant.normal_scores is False
    default = render()  # the role's defaults are the daemon's
    assert default.topic == "edge-inspector/line-a/st-7/events" and default.normal_scores is True
