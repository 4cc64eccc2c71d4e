"""Cluster increment 3: three `weir serve` voters form the metadata quorum, `weir cluster info`
shows it, the quorum survives SIGKILL of the active controller, and bad cluster settings stop the
broker at start with one clear line. (Clients on the cluster: test_cluster_clients.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cluster import Cluster, states, wait_for
from conftest import WEIR_BIN, free_port, run_weir


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.kill_all()


def test_quorum_forms_fails_over_and_rejoins(cluster):
    cluster.start()
    everyone = {1: "unfenced", 2: "unfenced", 3: "unfenced"}

    def formed():
        info = cluster.info(1)
        return info if info.get("controller") and states(info) == everyone else None

    info = wait_for("a controller and three unfenced brokers", formed, 30, cluster)
    # The mode and what it does not do yet are said once at start, plainly.
    log = cluster.nodes[1].log_path.read_text(errors="replace")
    assert log.count("cluster mode: this node is a voter") == 1, log
    controller = info["controller"]
    cluster_id = info["cluster_id"]
    assert set(info["voters"]) == {1, 2, 3}
    # Every node tells the same story.
    for i in (2, 3):
        other = cluster.info(i)
        assert other["cluster_id"] == cluster_id and other["controller"] == controller, other
    # Each broker registered its client and internal endpoints.
    b1 = info["brokers"][1]["endpoints"]
    assert f"PLAINTEXT://{cluster.nodes[1].bootstrap}" in b1 and "INTERNAL://" in b1, b1

    # SIGKILL the active controller: another one takes over and fences it.
    killed_at = time.monotonic()
    cluster.nodes[controller].kill9()
    survivor = next(i for i in (1, 2, 3) if i != controller)
    expected = {i: ("fenced" if i == controller else "unfenced") for i in (1, 2, 3)}

    def failed_over():
        info = cluster.info(survivor)
        ok = info.get("controller") not in (None, controller) and states(info) == expected
        return info if ok else None

    after = wait_for("a new controller and the killed broker fenced", failed_over, 30, cluster)
    sys.stderr.write(f"controller {controller} -> {after['controller']}, killed broker fenced "
                     f"after {time.monotonic() - killed_at:.1f}s\n")
    assert after["cluster_id"] == cluster_id

    # Restarted from its data directory, it rejoins unfenced (a new registration, a newer epoch)
    # and sees the same quorum.
    old_epoch = after["brokers"][controller]["epoch"]
    cluster.nodes[controller].start()

    def rejoined():
        info = cluster.info(controller)
        ok = states(info) == everyone and info["brokers"][controller]["epoch"] > old_epoch
        return info if ok else None

    back = wait_for("the restarted broker unfenced", rejoined, 30, cluster)
    assert back["cluster_id"] == cluster_id
    assert back["controller"] == after["controller"]
    assert back["voters"][controller]["log_end"] != "-", back

    # SIGTERM stops every node cleanly, and each data directory (the metadata log included)
    # verifies strictly.
    for b in cluster.nodes.values():
        assert b.stop() == 0, b.log_tail()
    for b in cluster.nodes.values():
        out = run_weir("debug", "verify", "--data-dir", str(b.data_dir)).stdout
        assert "meta/cluster-metadata" in out, out


def test_single_node_cluster_info_is_unchanged(broker):
    out = run_weir("cluster", "info", "-b", broker.bootstrap).stdout
    assert "BROKERS" in out and "QUORUM" not in out, out
    assert "CONTROLLER" in out


@pytest.mark.parametrize("settings, needle", [
    ({"node.id": "4", "controller.quorum.voters": "1@127.0.0.1:{p1},2@127.0.0.1:{p2}"},
     "node.id: is not one of controller.quorum.voters (1, 2)"),
    ({"node.id": "1", "controller.quorum.voters": "1@127.0.0.1:{p1},2-127.0.0.1"},
     'for controller.quorum.voters: entry "2-127.0.0.1" is not ID@HOST:PORT'),
    ({"node.id": "1", "controller.quorum.voters": "1@127.0.0.1:{p1},1@127.0.0.1:{p2}"},
     "repeats a node id"),
    ({"node.id": "1", "controller.quorum.voters": "1@127.0.0.1:{p1}",
      "broker.heartbeat.interval.ms": "5000"},
     "broker.heartbeat.interval.ms"),
])
def test_bad_cluster_settings_stop_the_broker_with_one_line(tmp_path, settings, needle):
    ports = {"p1": free_port(), "p2": free_port()}
    argv = [WEIR_BIN, "serve", "--listen", f"127.0.0.1:{free_port()}",
            "--data-dir", str(tmp_path / "data"), "--http-listen", ""]
    for k, v in settings.items():
        argv += ["--set", f"{k}={v.format(**ports)}"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("weir: ")]
    assert len(errors) == 1, p.stderr
    assert needle in errors[0], errors[0]
