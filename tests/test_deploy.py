"""The Grafana dashboard and the Prometheus alert rules in deploy/ (issue 13, design §6): both
parse, the rules cover what the design lists, and every metric they reference is exported by
a running broker (its /metrics families); the cluster-only ones are checked against a cluster
node by tests/test_cluster_metrics.py. `promtool check rules` runs when promtool is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from test_metrics import get

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "weir.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# Exported in cluster mode only.
CLUSTER_ONLY = {"weir_under_replicated_partitions", "weir_offline_partitions",
                "weir_isr_shrinks_total", "weir_isr_expands_total"}
# Series Prometheus makes itself for each target.
PROMETHEUS_OWN = {"up"}


def exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    out = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    out += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    out += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return out


def referenced() -> set[str]:
    names = set()
    for e in exprs():
        names |= set(re.findall(r"\b(weir_[a-z0-9_]+)", e))
        names |= {n for n in PROMETHEUS_OWN if re.search(rf"\b{n}\{{", e)}
    return names


def exported(http_address: str) -> set[str]:
    """Every series name /metrics may carry: its families (present even with no sample yet),
    histograms with their _bucket, _sum and _count."""
    status, _, text = get(http_address, "/metrics")
    assert status == 200
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_rules_and_dashboard_parse_and_cover_the_design():
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(alerts) >= {"WeirBrokerDown", "WeirBrokerNotReady", "WeirConsumerLagHigh",
                           "WeirLogDirDiskFreeLow", "WeirFsyncSlow", "WeirRequestErrorRateHigh",
                           "WeirUnderReplicatedPartitions"}
    for name, r in alerts.items():
        assert r["labels"]["severity"] in ("warning", "critical"), name
        assert r["annotations"]["summary"], name
        assert re.fullmatch(r"\d+[smh]", r["for"]), name
    assert "0.1" in alerts["WeirFsyncSlow"]["expr"]
    assert "0.10" in alerts["WeirLogDirDiskFreeLow"]["expr"]
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["uid"] and dash["title"] == "Weir"
    assert any("weir_group_lag_seconds" in t["expr"]
               for p in dash["panels"] for t in p.get("targets", []))


def test_every_referenced_metric_is_exported(broker):
    missing = referenced() - PROMETHEUS_OWN - CLUSTER_ONLY - exported(broker.http_address)
    assert not missing, f"referenced but not exported by a broker: {sorted(missing)}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_checks_the_rules():
    p = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
