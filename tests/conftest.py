"""Shared fixtures: real tiny Gemma 4 checkpoints, real exported bundles and the generated inspection data set,
built once per session.

Long phases (training the ``trained`` checkpoint, the ``bench`` exports, Ansible runs) report progress live
through the ``progress`` fixture, whatever pytest's capture and verbosity: a run never sits silent for minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest


class LiveProgress:
    """Lines pytest prints at once, between its own, while a fixture or test runs.

    >>> progress("ansible-playbook site.yml: TASK [edge_inspector : Install the wheel]")
    >>> with progress.build_logs("trained checkpoint"):   # edge.build's progress lines, live
    ...     write_checkpoint("trained", out)
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with self.lock, capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            reporter.write_line(f"    ~ {message}")

    @contextmanager
    def build_logs(self, label: str, every_s: float = 15.0) -> Iterator[None]:
        """Forward ``edge.build``'s progress lines (training steps, export layers, parity cases) while it runs.

        At most one line per ``every_s`` seconds, plus each step's ``done`` line.
        """
        last = [-every_s]

        def say(text: str) -> None:
            if ": done in " in text or time.monotonic() - last[0] >= every_s:
                last[0] = time.monotonic()
                self(f"{label}: {text}")

        handler = _Forward(say)
        build = logging.getLogger("edge.build")
        level = build.level
        build.addHandler(handler)
        build.setLevel(logging.INFO)
        try:
            yield
        finally:
            build.removeHandler(handler)
            build.setLevel(level)

    @contextmanager
    def ticker(self, label: str, status: Callable[[], str], every_s: float = 15.0) -> Iterator[None]:
        """``label: 45 s, <status()>`` every ``every_s`` seconds until the block ends."""
        stop, t0 = threading.Event(), time.monotonic()

        def tick() -> None:
            while not stop.wait(every_s):
                self(f"{label}: {time.monotonic() - t0:.0f} s, {status()}")

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


class _Forward(logging.Handler):
    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        self.say(record.getMessage())


@pytest.fixture(scope="session")
def progress(pytestconfig: pytest.Config) -> LiveProgress:
    return LiveProgress(pytestconfig)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge.build.fixtures.checkpoint import write_checkpoint

    return write_checkpoint("tiny", tmp_path_factory.mktemp("ckpt") / "tiny")


def _export(tmp_path_factory: pytest.TempPathFactory, ckpt: Path, quant: str, **kw: object) -> Path:
    from edge.build.export import ExportOptions, export_bundle
    from edge.build.quantize import recipe

    out = tmp_path_factory.mktemp("bundle") / f"tiny-{quant}"
    export_bundle(str(ckpt), out, ExportOptions(recipe=recipe(quant), context=1024, **kw))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def fp32_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path, progress: LiveProgress) -> Path:
    with progress.build_logs("tiny fp32 bundle"):
        return _export(tmp_path_factory, tiny_ckpt, "fp32")


@pytest.fixture(scope="session")
def int4_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path, progress: LiveProgress) -> Path:
    with progress.build_logs("tiny int4 bundle"):
        return _export(tmp_path_factory, tiny_ckpt, "int4")


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory: pytest.TempPathFactory, progress: LiveProgress) -> Path:
    from edge.build.fixtures.checkpoint import write_checkpoint

    with progress.build_logs("trained checkpoint"):
        return write_checkpoint("trained", tmp_path_factory.mktemp("ckpt") / "trained")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``edge fixture dataset --small``: 320x240 parts with defects and masks, machine sounds (seed 0)."""
    from edge.dataset.writer import write_dataset

    out = tmp_path_factory.mktemp("dataset") / "small"
    write_dataset(out, "small", seed=0)
    return out


@pytest.fixture(scope="session")
def fitted_gate(tmp_path_factory: pytest.TempPathFactory, small_dataset: Path) -> Path:
    """``edge gate fit`` on the small set's train split: image (variation model, with the pre-step) and sound."""
    from edge.gate.fit import GateFitRequest, fit_gate

    out = tmp_path_factory.mktemp("gate") / "gate"
    request = GateFitRequest(good_images=small_dataset / "train/good", good_sounds=small_dataset / "sound/train/good")
    fit_gate(out, request)
    return out


@pytest.fixture(autouse=True)
def _forced_path_runs_here(request: pytest.FixtureRequest) -> None:
    """Skips a test parametrized with a kernel path (``isa`` or ``kernels``) that this CPU cannot run.

    Every path is tested wherever the machine runs it: an AVX2-only CPU (Zen 3, most Core and Atom parts)
    skips the AVX-512 and AVX-VNNI cases, which then run on a machine that has them.
    """
    callspec = getattr(request.node, "callspec", None)
    if callspec is None:
        return
    from edge.errors import ConfigError
    from edge.kernels.library import PATHS, library_path, resolve

    path = callspec.params.get("isa", callspec.params.get("kernels"))
    library = library_path()
    if path not in PATHS or library is None:
        return
    try:
        resolve(library, path)
    except ConfigError as exc:
        pytest.skip(f"this CPU cannot run the {path} path: {exc}")
