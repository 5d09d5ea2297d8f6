"""Generates the edge-inspector Grafana dashboards (fleet and station) as plain, file-provisionable JSON.

Run ``python deploy/grafana/build_dashboards.py`` after editing; tests/deploy/test_grafana.py fails when the
committed JSON differs from this script's output. Stdlib only, so it runs anywhere without the venv.

The JSON has no ``__inputs`` and no ``${DS_...}``: Grafana's file provisioning does not resolve them. Every
query goes through the ``datasource`` template variable, and the provisioned datasource has the fixed uid
``edge-prometheus`` so the variable resolves on a fresh Grafana.

``job``, ``line`` and ``station`` are target labels added by the Prometheus scrape config (the daemon itself
exports no such labels, STYLE rule 10), so every selector filters on all three.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", line=~"$line", station=~"$station"'
RATE = "$__rate_interval"
N = "edge_inspector_"
# Stage histograms: (title, metric without _seconds_bucket)
STAGES = (
    ("Preprocess", "preprocess"),
    ("Queue wait", "queue_wait"),
    ("Prefill", "prefill"),
    ("Time to first token", "time_to_first_token"),
    ("Inter-token gap", "inter_token"),
    ("Description (work to last token)", "description"),
)


def q(expr: str, legend: str = "__auto", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def quantile(phi: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({phi}, sum by ({group}) (rate({metric}_bucket{{{SEL}}}[{RATE}])))"


def rate(metric: str, by: str = "station") -> str:
    return f"sum by ({by}) (rate({metric}{{{SEL}}}[{RATE}]))"


class Layout:
    """Places panels left to right on Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def add(self, kind: str, title: str, targets: list[dict[str, Any]], w: int = 12, h: int = 8, **kw: Any) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": targets,
        }
        panel.update(kw)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        self.y += 1


def unit(u: str, **defaults: Any) -> dict[str, Any]:
    return {"defaults": {"unit": u, **defaults}, "overrides": []}


def timeseries(layout: Layout, title: str, targets: list[dict[str, Any]], u: str, w: int = 12, **kw: Any) -> None:
    layout.add("timeseries", title, targets, w=w, fieldConfig=unit(u), **kw)


def stat(layout: Layout, title: str, targets: list[dict[str, Any]], u: str = "none", w: int = 4, **kw: Any) -> None:
    layout.add("stat", title, targets, w=w, h=4, fieldConfig=unit(u), **kw)


def variables(station_multi: bool) -> list[dict[str, Any]]:
    def query_var(name: str, query: str, multi: bool) -> dict[str, Any]:
        return {
            "name": name,
            "label": name.capitalize(),
            "type": "query",
            "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"},
            "definition": query,
            "refresh": 2,  # on time range change: stations come and go
            "sort": 1,
            "multi": multi,
            "includeAll": multi,
            **({"allValue": ".*", "current": {"text": "All", "value": "$__all"}} if multi else {}),
        }

    build = f"{N}build_info"
    return [
        {
            "name": "datasource",
            "label": "Datasource",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "edge-prometheus"},
            "refresh": 1,
            "hide": 0,
        },
        query_var("job", f"label_values({build}, job)", True),
        query_var("line", f'label_values({build}{{job=~"$job"}}, line)', True),
        query_var("station", f'label_values({build}{{job=~"$job", line=~"$line"}}, station)', station_multi),
    ]


def dashboard(uid: str, title: str, layout: Layout, station_multi: bool, links: list[dict[str, Any]]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["edge-inspector"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "links": links,
        "templating": {"list": variables(station_multi)},
        "panels": layout.panels,
    }


def fleet() -> dict[str, Any]:
    lay = Layout()
    lay.row("Fleet")
    stat(lay, "Stations up", [q(f"sum(up{{{SEL}}})", "up")], w=4)
    stat(lay, "Stations serving", [q(f"sum({N}serving{{{SEL}}})", "serving")], w=4)
    stat(lay, "Stations down", [q(f"count(up{{{SEL}}} == 0) or vector(0)", "down")], w=4)
    stat(lay, "Versions running", [q(f"count(count by (version) ({N}build_info{{{SEL}}}))", "versions")], w=4)
    stat(lay, "Descriptions/s", [q(f"sum(rate({N}descriptions_total{{{SEL}}}[{RATE}]))", "desc/s")], "reqps", w=4)
    stat(lay, "Tokens/s", [q(f"sum(rate({N}tokens_generated_total{{{SEL}}}[{RATE}]))", "tok/s")], w=4)
    lay.add(
        "table",
        "Versions and bundles",
        [
            q(
                f"max by (line, station, version, bundle_id, model, quantization) ({N}build_info{{{SEL}}})",
                format="table",
                instant=True,
            )
        ],
        w=24,
        h=7,
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}],
    )
    lay.row("Errors and drops")
    timeseries(
        lay,
        "RPC error ratio (as alerted)",
        [q(f"max by (station) (instance:{N}request_errors:ratio_rate5m{{{SEL}}})", "{{station}}")],
        "percentunit",
        w=8,
    )
    timeseries(
        lay,
        "Frames lost: stale, queue full, invalid (as alerted)",
        [q(f"max by (station) (instance:{N}frames_dropped:ratio_rate5m{{{SEL}}})", "{{station}}")],
        "percentunit",
        w=8,
    )
    # Per frame that arrived, as the recording rule counts: invalid frames are not counted as received.
    arrived = (
        f"sum(rate({N}frames_received_total{{{SEL}}}[{RATE}])) "
        f'+ sum(rate({N}frames_dropped_total{{{SEL}, reason="invalid"}}[{RATE}]))'
    )
    timeseries(
        lay,
        "Frame drop ratio by reason",
        [
            q(
                f"{rate(f'{N}frames_dropped_total', 'reason')} / ignoring (reason) group_left () ({arrived})",
                "{{reason}}",
            )
        ],
        "percentunit",
        w=8,
    )
    lay.row("Anomaly gate")
    timeseries(
        lay,
        "Share of frames passed to the model (anomaly rate)",
        [q(f"max by (station) (instance:{N}gate_anomalous:ratio_rate5m{{{SEL}}})", "{{station}}")],
        "percentunit",
    )
    timeseries(
        lay,
        "Gate latency p99 (image)",
        [q(f"max by (station) (instance:{N}gate_latency_seconds:p99_rate5m{{{SEL}}})", "{{station}}")],
        "s",
    )
    lay.row("Latency and throughput")
    lay.add(
        "heatmap",
        "Description latency",
        [q(f"sum by (le) (rate({N}description_seconds_bucket{{{SEL}}}[{RATE}]))", "{{le}}", format="heatmap")],
        w=12,
        options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1, "color": {"scheme": "Oranges"}},
    )
    timeseries(
        lay,
        "Description latency p50 / p99 (5m, as alerted)",
        [
            q(f"max by (station) (instance:{N}description_seconds:p50_rate5m{{{SEL}}})", "p50 {{station}}", "A"),
            q(f"max by (station) (instance:{N}description_seconds:p99_rate5m{{{SEL}}})", "p99 {{station}}", "B"),
        ],
        "s",
    )
    timeseries(lay, "Tokens generated/s", [q(rate(f"{N}tokens_generated_total"), "{{station}}")], "none")
    timeseries(
        lay,
        "Queue depth",
        [
            q(f"max by (station) ({N}queue_depth{{{SEL}}})", "{{station}}", "A"),
            q(f"max({N}queue_capacity{{{SEL}}})", "capacity", "B"),
        ],
        "none",
        w=12,
    )
    timeseries(
        lay,
        "Memory: resident vs limit",
        [
            q(f"max by (station) ({N}resident_memory_bytes{{{SEL}}})", "resident {{station}}", "A"),
            q(f"min by (station) ({N}memory_limit_bytes{{{SEL}}})", "limit {{station}}", "B"),
        ],
        "bytes",
        w=12,
    )
    timeseries(
        lay,
        "Memory used of limit (alert at 98%)",
        [q(f"max by (station) (instance:{N}memory_used:ratio{{{SEL}}})", "{{station}}")],
        "percentunit",
        w=12,
    )
    lay.row("Events, evidence and MQTT")
    timeseries(lay, "MQTT connected", [q(f"max by (station) ({N}mqtt_connected{{{SEL}}})", "{{station}}")], "none", w=8)
    timeseries(
        lay,
        "Events waiting for the broker (alert: growing 15 min)",
        [q(f"max by (station) ({N}journal_backlog_events{{{SEL}}})", "{{station}}")],
        "none",
        w=8,
    )
    timeseries(
        lay,
        "Evidence disk: free space over its floor",
        [q(f"min by (station) ({N}evidence_free_bytes{{{SEL}}})", "free {{station}}", "A"),
         q(f"max by (station) ({N}evidence_free_floor_bytes{{{SEL}}})", "floor {{station}}", "B")],
        "bytes",
        w=8,
    )  # fmt: skip
    timeseries(
        lay,
        "Decisions not journaled (alert: any)",
        [q(f"sum by (station) (increase({N}journal_write_errors_total{{{SEL}}}[{RATE}]))", "{{station}}")],
        "none",
        w=12,
    )
    timeseries(
        lay,
        "Evidence skipped (alert: any in 15 min)",
        [q(f"sum by (station, class) (increase({N}evidence_skipped_total{{{SEL}}}[{RATE}]))", "{{station}} {{class}}")],
        "none",
        w=12,
    )
    link = {"title": "Station", "type": "dashboards", "tags": ["edge-inspector"], "asDropdown": True,
            "includeVars": True, "keepTime": True}  # fmt: skip
    return dashboard("edge-inspector-fleet", "Edge Inspector / Fleet", lay, True, [link])


def station() -> dict[str, Any]:
    lay = Layout()
    lay.row("State")
    stat(lay, "Up", [q(f"max(up{{{SEL}}})", "up")])
    stat(lay, "Serving", [q(f"max({N}serving{{{SEL}}})", "serving")])
    stat(lay, "Bundle loaded", [q(f"max({N}bundle_loaded{{{SEL}}})", "loaded")])
    stat(lay, "Bundle verified", [q(f"max({N}bundle_verified{{{SEL}}})", "verified")])
    stat(lay, "Model load time", [q(f"max({N}model_load_seconds{{{SEL}}})", "load")], "s")
    stat(lay, "Restarts (1h)", [q(f"sum(changes(process_start_time_seconds{{{SEL}}}[1h]))", "restarts")])
    lay.add(
        "table",
        "Build and bundle",
        [q(f"max by (version, bundle_id, model, quantization) ({N}build_info{{{SEL}}})", format="table", instant=True)],
        w=24,
        h=4,
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}],
    )
    lay.row("Stage latency")
    for title, stage in STAGES:
        metric = f"{N}{stage}_seconds"
        targets = [
            q(quantile(p, metric), f"p{round(p * 100)}", ref) for p, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
        ]
        timeseries(lay, title, targets, "s", w=8)
    lay.row("Traffic")
    timeseries(
        lay, "Requests by RPC and code", [q(rate(f"{N}requests_total", "rpc, code"), "{{rpc}} {{code}}")], "reqps"
    )
    timeseries(lay, "Errors by RPC", [q(rate(f"{N}request_errors_total", "rpc"), "{{rpc}}")], "reqps")
    timeseries(
        lay,
        "Frames received and dropped",
        [
            q(rate(f"{N}frames_received_total", "station"), "received", "A"),
            q(rate(f"{N}frames_dropped_total", "reason"), "dropped {{reason}}", "B"),
        ],
        "none",
    )
    timeseries(lay, "Descriptions by outcome", [q(rate(f"{N}descriptions_total", "outcome"), "{{outcome}}")], "none")
    timeseries(
        lay,
        "Tokens/s",
        [
            q(rate(f"{N}tokens_generated_total"), "generated", "A"),
            q(rate(f"{N}prompt_tokens_total"), "prompt", "B"),
        ],
        "none",
        w=8,
    )
    timeseries(lay, "Audio received", [q(rate(f"{N}audio_received_seconds_total"), "audio s/s")], "none", w=8)
    timeseries(
        lay,
        "Active streams and queue",
        [
            q(f"max({N}active_streams{{{SEL}}})", "active streams", "A"),
            q(f"max({N}queue_depth{{{SEL}}})", "queue depth", "B"),
            q(f"max({N}queue_capacity{{{SEL}}})", "queue capacity", "C"),
        ],
        "none",
        w=8,
    )
    lay.row("Anomaly gate")
    timeseries(
        lay,
        "Gate verdicts",
        [
            q(rate(f"{N}gate_frames_total", "label"), "frames {{label}}", "A"),
            q(rate(f"{N}gate_windows_total", "label"), "audio windows {{label}}", "B"),
        ],
        "none",
        w=8,
    )
    timeseries(
        lay,
        "Share of frames passed to the model",
        [
            q(f"max(instance:{N}gate_anomalous:ratio_rate5m{{{SEL}}})", "anomalous share", "A"),
            q(f"max({N}gate_threshold{{{SEL}}})", "threshold", "B"),
        ],
        "percentunit",
        w=8,
    )
    timeseries(
        lay,
        "Gate latency and scores",
        [
            q(quantile(0.99, f"{N}gate_latency_seconds", "kind"), "p99 {{kind}} latency", "A"),
            q(quantile(0.5, f"{N}gate_score", "kind"), "median {{kind}} score", "B"),
        ],
        "s",
        w=8,
    )
    lay.row("Cameras")
    timeseries(
        lay,
        "Cameras up (0 = connecting, backoff or failed)",
        [q(f"max by (camera) ({N}camera_up{{{SEL}}})", "{{camera}}")],
        "none",
        w=8,
    )
    timeseries(
        lay,
        "Camera frames/s received",
        [q(rate(f"{N}camera_frames_received_total", "camera"), "{{camera}}")],
        "none",
        w=8,
    )
    timeseries(
        lay, "Camera frame age", [q(f"max by (camera) ({N}camera_frame_age_seconds{{{SEL}}})", "{{camera}}")], "s", w=8
    )
    timeseries(
        lay,
        "Camera reconnects and decode errors",
        [
            q(rate(f"{N}camera_reconnects_total", "camera"), "reconnects {{camera}}", "A"),
            q(rate(f"{N}camera_decode_errors_total", "camera"), "decode errors {{camera}}", "B"),
        ],
        "none",
        w=24,
    )
    lay.row("Events, evidence and MQTT")
    stat(lay, "MQTT connected", [q(f"max({N}mqtt_connected{{{SEL}}})", "connected")])
    stat(lay, "Events waiting for the broker", [q(f"max({N}journal_backlog_events{{{SEL}}})", "backlog")])
    stat(lay, "Journal head", [q(f"max({N}journal_head_sequence{{{SEL}}})", "head")])
    stat(lay, "Published (acknowledged)", [q(f"max({N}journal_published_sequence{{{SEL}}})", "published")])
    stat(lay, "Journal size", [q(f"max({N}journal_bytes{{{SEL}}})", "bytes")], "bytes")
    stat(lay, "Evidence free space", [q(f"min({N}evidence_free_bytes{{{SEL}}})", "free")], "bytes")
    timeseries(
        lay,
        "MQTT: acknowledged, publish errors, connection errors, triggers, publisher restarts",
        [
            q(rate(f"{N}mqtt_published_total"), "acknowledged", "A"),
            q(rate(f"{N}mqtt_publish_errors_total"), "publish errors", "B"),
            q(rate(f"{N}mqtt_connection_errors_total", "reason"), "connection {{reason}}", "C"),
            q(rate(f"{N}mqtt_triggers_total", "result"), "triggers {{result}}", "D"),
            q(rate(f"{N}mqtt_publisher_restarts_total"), "publisher process restarts", "E"),
        ],
        "none",
        w=8,
    )
    timeseries(
        lay,
        "Evidence stored by class",
        [q(f"max by (class) ({N}evidence_bytes{{{SEL}}})", "{{class}}")],
        "bytes",
        w=8,
    )
    timeseries(
        lay,
        "Not kept: decisions not journaled (alert: any), evidence skipped by class",
        [
            q(rate(f"{N}journal_write_errors_total"), "decisions not journaled", "A"),
            q(rate(f"{N}evidence_skipped_total", "class"), "evidence skipped: {{class}}", "B"),
        ],
        "none",
        w=8,
    )
    lay.row("Resources")
    timeseries(
        lay,
        "Memory",
        [
            q(f"max({N}resident_memory_bytes{{{SEL}}})", "resident", "A"),
            q(f"min({N}memory_limit_bytes{{{SEL}}})", "limit", "B"),
            q(f"min({N}memory_high_bytes{{{SEL}}})", "high (throttle)", "C"),
        ],
        "bytes",
    )
    timeseries(lay, "CPU", [q(f"sum(rate(process_cpu_seconds_total{{{SEL}}}[{RATE}]))", "cpu")], "percentunit")
    link = {"title": "Fleet", "type": "link", "url": "/d/edge-inspector-fleet", "includeVars": True, "keepTime": True}
    return dashboard("edge-inspector-station", "Edge Inspector / Station", lay, False, [link])


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    boards = {"edge-inspector-fleet.json": fleet(), "edge-inspector-station.json": station()}
    return {name: json.dumps(board, indent=2, sort_keys=True) + "\n" for name, board in boards.items()}


def main() -> int:
    DASHBOARDS.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (DASHBOARDS / name).write_text(text)
        print(f"wrote {DASHBOARDS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
