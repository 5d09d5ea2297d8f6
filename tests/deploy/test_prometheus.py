"""deploy/prometheus: real promtool on the config, rules and rule unit tests, and what every alert must carry."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge.serve.metrics import Metrics
from tests.tools import required_tool

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
CONFIG = PROM / "prometheus.yml"
RULES = PROM / "rules" / "edge-inspector.rules.yml"
UNIT_TESTS = PROM / "tests" / "edge-inspector.test.yml"
RUNBOOK = PROM / "RUNBOOK.md"
SEVERITIES = {"critical", "warning", "info"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return required_tool("promtool", "prometheus")


def run(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


RULE_GROUPS = load(RULES)["groups"]
ALERTS = [r for g in RULE_GROUPS for r in g["rules"] if "alert" in r]
RECORDS = [r for g in RULE_GROUPS for r in g["rules"] if "record" in r]
TESTS = load(UNIT_TESTS)["tests"]


def test_config_is_valid_as_installed(promtool: str, tmp_path: Path) -> None:
    # Installed layout: the stations' file_sd file next to the config. Here the example stands in for it, so
    # promtool also checks the example's targets and labels, and nothing may be left to warn about.
    installed = tmp_path / "prometheus"
    shutil.copytree(PROM, installed)
    shutil.copy(PROM / "file_sd" / "edge-inspector.example.yml", installed / "file_sd" / "edge-inspector.yml")
    out = run(promtool, "check", "config", installed / "prometheus.yml")
    assert "WARNING" not in out, out


def test_config_is_valid_in_the_repository(promtool: str) -> None:
    # Without a stations file promtool only warns: Prometheus starts and waits for it.
    run(promtool, "check", "config", CONFIG)


def test_config_scrapes_the_job_from_file_sd_and_loads_the_rules() -> None:
    config = load(CONFIG)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "edge-inspector"]
    assert job["file_sd_configs"][0]["files"] == ["file_sd/edge-inspector.yml"]
    assert [(CONFIG.parent / f).resolve() for f in config["rule_files"]] == [RULES]


def test_example_targets_carry_station_and_line() -> None:
    for group in load(PROM / "file_sd" / "edge-inspector.example.yml"):
        assert group["targets"]
        assert {"station", "line"} <= group["labels"].keys()


def test_rules_pass_promtool_check(promtool: str) -> None:
    run(promtool, "check", "rules", RULES)


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "test", "rules", UNIT_TESTS)


@pytest.mark.parametrize("rule", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_alert_has_for_severity_summary_and_runbook(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+[smhd]", rule.get("for", "")) and not rule["for"].startswith("0"), rule
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["annotations"]["summary"]
    page, _, anchor = rule["annotations"]["runbook"].partition("#")
    assert (ROOT / page) == RUNBOOK and anchor == rule["alert"].lower()
    assert f"\n## {rule['alert']}\n" in RUNBOOK.read_text()


@pytest.mark.parametrize("rule", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_alert_fires_and_stays_silent_in_the_unit_tests(rule: dict[str, Any]) -> None:
    cases = [c for t in TESTS for c in t.get("alert_rule_test", []) if c["alertname"] == rule["alert"]]
    assert any(c.get("exp_alerts") for c in cases), f"{rule['alert']} never fires in {UNIT_TESTS.name}"
    assert any(not c.get("exp_alerts") for c in cases), f"{rule['alert']} is never shown silent"


@pytest.mark.parametrize("rule", RECORDS, ids=[r["record"] for r in RECORDS])
def test_recording_rule_value_is_tested(rule: dict[str, Any]) -> None:
    exprs = [c["expr"] for t in TESTS for c in t.get("promql_expr_test", []) if c.get("exp_samples")]
    assert any(rule["record"] in e for e in exprs), f"no promql_expr_test checks {rule['record']}"


def exposed_names(tmp_path: Path) -> set[str]:
    """Family and sample names of a real Metrics registry, on a cgroup v2 with limits (so the limit series exist)."""
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (cgroup / "edge").mkdir(parents=True)
    proc.mkdir()
    (proc / "status").write_text("VmRSS:\t1024 kB\n")
    (proc / "cgroup").write_text("0::/edge\n")
    (cgroup / "cgroup.controllers").write_text("memory\n")
    (cgroup / "edge" / "memory.max").write_text(f"{13 * 2**30}\n")
    (cgroup / "edge" / "memory.high").write_text(f"{13056 * 2**20}\n")
    registry = CollectorRegistry()
    Metrics(registry, proc_self=proc, cgroup_root=cgroup)
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    return {f.name for f in families} | {s.name for f in families for s in f.samples}


def test_rules_name_only_metrics_the_daemon_exports(tmp_path: Path) -> None:
    exposed = exposed_names(tmp_path)
    assert "process_start_time_seconds" in exposed  # the restart-loop alert depends on it
    # Expressions and annotations; recorded names (with ":") and label values (with "-") do not match.
    text = RULES.read_text() + RUNBOOK.read_text()
    used = set(re.findall(r"(?<![\w:])((?:edge_inspector|process)_\w+)(?![\w:])", text))
    assert used and used <= exposed, sorted(used - exposed)
