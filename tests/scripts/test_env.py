"""scripts/env: a held dpkg lock is waited for (the real lock, as unattended-upgrades holds it), and failures say
which step failed and what to do."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DPKG_LOCK = Path("/var/lib/dpkg/lock-frontend")


@pytest.fixture()
def dpkg_lock() -> Iterator[int]:
    """This process holds dpkg's frontend lock (fcntl, as apt and dpkg take it) until the test releases it."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None or not DPKG_LOCK.parent.is_dir():
        pytest.skip("needs root and apt-get (Debian); CI has both")
    fd = os.open(DPKG_LOCK, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # blocks while a real apt runs on this machine, then holds it
        yield fd
    finally:
        os.close(fd)


def apt_wait(timeout: int, tmp_path: Path) -> subprocess.Popen[str]:
    # apt-get install of a package that is already there: it takes the lock and changes nothing
    script = f'. "{REPO}/scripts/env-run"; apt_wait {timeout} apt-get install -y -q --no-install-recommends openssl'
    script += '; rc=$?; echo "rc=$rc holder=$APT_HOLDER"'
    return subprocess.Popen(
        ["bash", "-c", script],
        env={**os.environ, "APT_LOG": str(tmp_path / "apt.log")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_waits_for_a_held_dpkg_lock_then_runs(dpkg_lock: int, tmp_path: Path) -> None:
    proc = apt_wait(600, tmp_path)
    try:
        assert proc.stderr is not None
        said = proc.stderr.readline()  # blocks until apt_wait reports the wait
        assert said.startswith("scripts/env: another package manager is running"), said
        assert f"held by process {os.getpid()}" in said and "waiting for it, up to 600 s" in said
        fcntl.lockf(dpkg_lock, fcntl.LOCK_UN)  # the other package manager is done: apt_wait's next try runs
        out, _ = proc.communicate(timeout=600)
        assert out.startswith("rc=0 ")
    finally:
        proc.kill()
        proc.communicate()


def test_gives_up_after_the_timeout_naming_the_holder(dpkg_lock: int, tmp_path: Path) -> None:
    out, _ = apt_wait(0, tmp_path).communicate(timeout=600)
    assert out.startswith(f"rc=75 holder=held by process {os.getpid()}")


def test_failed_step_says_which_and_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    for name in ("env", "env-run"):
        shutil.copy(REPO / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    env = {**os.environ, "PYTHON": "/bin/false"}
    proc = subprocess.run([str(tmp_path / "scripts" / "env"), "--for", "demo"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "scripts/env: step 'python_venv' failed: /bin/false is not Python >= 3.11",
        "  what to do: install Python 3.11 or newer, or point PYTHON=/path/to/python3.11 at one",
    ]
    assert not (tmp_path / ".venv").exists()
    bad = subprocess.run([str(tmp_path / "scripts" / "env"), "--for", "stations"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--for must be demo or test" in bad.stderr
