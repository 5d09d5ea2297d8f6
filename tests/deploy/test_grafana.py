"""deploy/grafana: the dashboards are the script's output, provisionable as files, and query a real daemon's series.

The query check scrapes a real daemon (real tiny bundle, real gRPC request) before and after one request, feeds
both scrapes to the real ``promtool test rules`` as input series one minute apart (with the target labels
Prometheus would add), together with the real recording rules when they exist, and evaluates every dashboard
query there: each must return at least one sample.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.tools import required_tool

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "edge-inspector.rules.yml"
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
# Target labels the scrape config adds; the template variables are replaced by these values.
TARGET = {"job": "edge-inspector", "instance": "station-7:9464", "line": "line-1", "station": "station-7"}
GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$job": TARGET["job"],
    "$line": TARGET["line"],
    "$station": TARGET["station"],
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def exprs() -> list[tuple[str, str, str]]:
    """(board, panel title, expr) for every target of every panel."""
    return [
        (name, p["title"], t["expr"]) for name, b in boards().items() for p in panels(b) for t in p.get("targets", [])
    ]


def concrete(expr: str) -> str:
    for var in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(var, GRAFANA_VARS[var])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


# -- structure ----------------------------------------------------------------------------------------------------


def test_json_is_the_scripts_output() -> None:
    rendered = builder().render()
    committed = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == rendered, "run: python deploy/grafana/build_dashboards.py"
    assert set(rendered) == {"edge-inspector-fleet.json", "edge-inspector-station.json"}


def test_file_provisionable_without_inputs() -> None:
    for name, board in boards().items():
        text = (GRAFANA / "dashboards" / name).read_text()
        assert "__inputs" not in text and "${DS_" not in text, name
        assert board["schemaVersion"] >= 39 and board["uid"] == name.removesuffix(".json")
        for node in walk(board):
            if "datasource" in node and not isinstance(node["datasource"], str):
                assert node["datasource"] == DS_REF, (name, node.get("title"))
            if "uid" in node and node.get("type") == "prometheus":
                assert node["uid"] == "${datasource}", name


def test_panels_have_targets_and_unique_ids() -> None:
    for name, board in boards().items():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), name
        for p in panels(board):
            if p["type"] != "row":
                assert p["targets"] and all(t["expr"].strip() and t["datasource"] == DS_REF for t in p["targets"])


def test_variables_and_every_selector_filters_on_them() -> None:
    for name, board in boards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert list(variables) == ["datasource", "job", "line", "station"], name
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert variables["datasource"]["current"]["value"] == "edge-prometheus"
        for var in ("job", "line", "station"):
            assert variables[var]["type"] == "query" and variables[var]["datasource"] == DS_REF
            assert variables[var]["definition"].startswith("label_values(edge_inspector_build_info")
        assert variables["station"]["multi"] is (name == "edge-inspector-fleet.json")
    for name, title, expr in exprs():
        selectors = SELECTOR.findall(expr)
        assert selectors, (name, title, expr)
        for _, matchers in selectors:
            for var in ("job", "line", "station"):
                assert f'{var}=~"${var}"' in matchers, (name, title, expr)


def test_provisioning_points_at_the_fixed_uid() -> None:
    datasource = (GRAFANA / "provisioning" / "datasources" / "edge-inspector.yml").read_text()
    assert re.search(r"^\s+uid: edge-prometheus$", datasource, re.M)
    assert re.search(r"^\s+type: prometheus$", datasource, re.M)
    provider = (GRAFANA / "provisioning" / "dashboards" / "edge-inspector.yml").read_text()
    assert re.search(r"^\s+type: file$", provider, re.M) and "path:" in provider


# -- every query against a real daemon's series, in the real promtool ----------------------------------------------


def promtool() -> str:
    return required_tool("promtool", "prometheus")


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Series:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def scrapes(
    fp32_bundle: Path, fitted_gate: Path, small_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Series, Series]:
    """The daemon's live exposition before and after a real Describe, a real Inspect session and a gated one,
    with a pulled camera (a looping video file) streaming."""
    import cv2
    import grpc
    import numpy as np
    from prometheus_client import generate_latest

    from edge.build.parity import synthetic_audio, synthetic_image
    from edge.gate import load_gate
    from edge.runtime.engine import Engine
    from edge.sources.config import CameraConfig
    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc
    from tests.serve.conftest import RunningDaemon, serve_config
    from tests.sources.conftest import eventually

    video = tmp_path_factory.mktemp("camera") / "parts.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    camera = CameraConfig(id="cam-1", url=str(video), trigger="interval", interval_seconds=60, fps=2)
    cfg = serve_config(fp32_bundle, gate=fitted_gate, cameras=(camera,))
    daemon = RunningDaemon(cfg, Engine(fp32_bundle, threads=1), load_gate(fitted_gate))
    eventually(lambda: daemon.sample("edge_inspector_camera_frames_received_total", {"camera": "cam-1"}) > 0, "frames")
    try:
        before = parse(generate_latest(daemon.registry).decode())
        img = synthetic_image(64, 64)
        raw = pb.RawImage(width=64, height=64, format=pb.PIXEL_FORMAT_RGB8, data=img.tobytes())
        opts = pb.GenerationOptions(max_new_tokens=4)
        wave = synthetic_audio(1.0).astype("<f4").tobytes()
        audio = pb.Audio(encoding=pb.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16_000, channels=1, data=wave)
        session = [  # one invalid frame (a drop), one good frame, audio, a trigger: every frame/audio counter moves
            pb.InspectRequest(
                config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, prompt="D.", options=opts)
            ),
            pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=pb.Image(encoded=b"not an image"))),
            pb.InspectRequest(frame=pb.Frame(capture_time=2.0, image=pb.Image(raw=raw))),
            pb.InspectRequest(audio=pb.AudioChunk(capture_time=2.0, audio=audio)),
            pb.InspectRequest(trigger=pb.Trigger(capture_time=2.0)),
        ]
        with grpc.insecure_channel(daemon.target) as channel:
            stub = pb_grpc.InspectorServiceStub(channel)
            resp = stub.Describe(pb.DescribeRequest(images=[pb.Image(raw=raw)], prompt="D.", options=opts), timeout=60)
            events = [e.WhichOneof("event") for e in stub.Inspect(iter(session), timeout=60)]
            gated = [pb.InspectRequest(config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_GATED, options=opts))]
            good = sorted((small_dataset / "test/good").glob("*.png"))[0].read_bytes()  # passes the gate
            for k, image in enumerate((pb.Image(encoded=good), pb.Image(raw=raw))):  # the synthetic frame fails it
                gated.append(pb.InspectRequest(frame=pb.Frame(capture_time=3.0 + k, image=image)))
            gated.append(pb.InspectRequest(audio=pb.AudioChunk(capture_time=3.0, audio=audio)))  # a sound window
            scored = [e.WhichOneof("event") for e in stub.Inspect(iter(gated), timeout=60)]
        assert len(resp.token_ids) >= 2  # inter-token gaps need two tokens
        assert scored.count("scored") == 1 and scored.count("finished") >= 1, scored
        assert "dropped" in events and "finished" in events, events
        eventually(
            lambda: daemon.sample("edge_inspector_camera_frames_received_total", {"camera": "cam-1"}) > 10, "more"
        )
        after = parse(generate_latest(daemon.registry).decode())
    finally:
        daemon.stop()
    return before, after


def cgroup_series(tmp_path: Path) -> Series:
    """Memory limit series from the real collector reading a fake cgroup v2 with a limit.

    The daemon exports them only when its cgroup has a limit; this host may have none, so where the live scrape
    lacks them the query check takes them from here (the same collector code, on fake /proc and /sys files).
    """
    from prometheus_client import CollectorRegistry, generate_latest

    from edge.serve.metrics import Metrics

    (tmp_path / "edge").mkdir(parents=True)
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    (tmp_path / "cgroup").write_text("0::/edge\n")
    (tmp_path / "status").write_text("VmRSS:\t1024 kB\n")
    (tmp_path / "edge" / "memory.max").write_text("8589934592\n")
    (tmp_path / "edge" / "memory.high").write_text("7516192768\n")
    registry = CollectorRegistry()
    Metrics(registry, proc_self=tmp_path, cgroup_root=tmp_path)
    wanted = ("edge_inspector_memory_limit_bytes", "edge_inspector_memory_high_bytes")
    series = {k: v for k, v in parse(generate_latest(registry).decode()).items() if k[0] in wanted}
    assert {name for name, _ in series} == set(wanted)
    return series


def recorded() -> set[str]:
    return (
        set(re.findall(r"^\s*-?\s*record:\s*['\"]?([a-zA-Z_:][a-zA-Z0-9_:]*)", RULES.read_text(), re.M))
        if RULES.exists()
        else set()
    )


def names_in(expr: str) -> set[str]:
    return {n for n in IDENT.findall(expr) if "edge_inspector_" in n or n.startswith("process_")}


def number(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Inf" if v == math.inf else "-Inf" if v == -math.inf else repr(v))


def series_line(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    pairs = {**dict(labels), **TARGET}
    return name + "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(pairs.items())) + "}"


@pytest.mark.slow
def test_every_query_returns_data_from_a_live_scrape(scrapes: tuple[Series, Series], tmp_path: Path) -> None:
    tool = promtool()
    before, after = scrapes
    for key, value in cgroup_series(tmp_path / "cgroup").items():
        if not any(name == key[0] for name, _ in after):
            before, after = {**before, key: value}, {**after, key: value}
    exposed = {name for name, _ in after}
    records = recorded()

    unknown = {(title, n) for _, title, e in exprs() for n in names_in(e) if n not in exposed | records}
    assert not unknown, f"metric names neither exposed by the daemon nor recorded: {sorted(unknown)}"

    # Two scrapes one minute apart; "_" is a missing sample (a series that appeared with the traffic). `up` is
    # what Prometheus itself adds for the target.
    inputs = [{"series": series_line("up", ()), "values": "1 1"}]
    for key in sorted(before.keys() | after.keys()):
        values = " ".join(number(s[key]) if key in s else "_" for s in (before, after))
        inputs.append({"series": series_line(*key), "values": values})
    one = [{"labels": "{}", "value": 1}]
    checks = [{"expr": f"count({concrete(e)}) > bool 0", "eval_time": "1m", "exp_samples": one} for _, _, e in exprs()]
    # YAML is a superset of JSON, so json.dumps writes a valid promtool test file without a YAML dependency.
    test_file = tmp_path / "dashboards.test.yml"
    test_file.write_text(
        json.dumps(
            {
                "rule_files": [str(RULES)] if RULES.exists() else [],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": checks}],
            },
            indent=1,
        )
    )
    run = subprocess.run([tool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    where = "\n".join(
        f"{board} / {title}: {e}" for board, title, e in exprs() if json.dumps(f"count({concrete(e)}) > bool 0") in out
    )
    assert run.returncode == 0, f"{out}\nempty or broken panels:\n{where}"
