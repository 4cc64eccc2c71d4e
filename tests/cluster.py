"""Shared helpers of the cluster tests (tests/test_cluster_*.py): a `Cluster` of conftest
`Broker`s on loopback, `weir cluster info` parsed, and a deadline wait that prints the nodes' logs
when it gives up."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Broker, free_port, run_weir


class Cluster:
    """N voters (node ids 1..N) on loopback, each a conftest Broker with its internal listener on
    a free port."""

    def __init__(self, tmp_path: Path, n: int = 3, settings: dict | None = None):
        internal = {i: free_port() for i in range(1, n + 1)}
        self.voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in internal.items())
        self.nodes: dict[int, Broker] = {}
        for i in internal:
            s = {"node.id": str(i), "controller.quorum.voters": self.voters}
            s.update(settings or {})
            self.nodes[i] = Broker(tmp_path / f"node{i}-data", tmp_path, settings=s, name=f"node{i}")

    def start(self) -> "Cluster":
        for b in self.nodes.values():
            b.start()
        return self

    def kill_all(self):
        for b in self.nodes.values():
            b.kill9()

    def info(self, node: int) -> dict:
        """`weir cluster info` asked of `node`, parsed."""
        p = run_weir("cluster", "info", "-b", self.nodes[node].bootstrap, timeout=30)
        return parse_info(p.stdout)

    def logs(self) -> str:
        return "\n".join(b.log_tail(80) for b in self.nodes.values())


PARTITION_SECTIONS = {"UNDER-REPLICATED PARTITIONS": "under_replicated",
                      "OFFLINE PARTITIONS": "offline"}


def parse_info(text: str) -> dict:
    """CLUSTER ID / CONTROLLER / IMAGE (caught_up) / UNDER-REPLICATED / OFFLINE rows, then the BROKERS, QUORUM and
    (brokers beyond the voters) OBSERVERS tables, then the under-replicated and offline partitions as {"under_replicated": [(topic,
    partition)], "offline": [...]}."""
    out: dict = {"brokers": {}, "voters": {}, "observers": {}, "under_replicated": [],
                 "offline": []}
    section = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.strip() in ("BROKERS", "QUORUM", "OBSERVERS") or line.strip() in PARTITION_SECTIONS:
            section = line.strip()
            continue
        cols = line.split()
        if section in PARTITION_SECTIONS:
            if cols[0] != "TOPIC":
                out[PARTITION_SECTIONS[section]].append((cols[0], int(cols[1])))
            continue
        if section is None:
            if line.startswith("CLUSTER ID"):
                out["cluster_id"] = cols[2]
            elif cols[0] == "CONTROLLER":
                out["controller"] = None if cols[1] == "-" else int(cols[1])
            elif cols[0] == "IMAGE":
                out["caught_up"] = cols[1] == "caught-up"
            elif cols[0] in ("UNDER-REPLICATED", "OFFLINE"):
                out[cols[0].lower().replace("-", "_") + "_count"] = int(cols[1])
        elif section == "BROKERS" and cols[0] != "ID":
            out["brokers"][int(cols[0].rstrip("*"))] = {"state": cols[1], "epoch": int(cols[2]),
                                                        "endpoints": cols[3]}
        elif section == "QUORUM" and cols[0] != "VOTER":
            out["voters"][int(cols[0].rstrip("*"))] = {"log_end": cols[2], "lag": cols[3]}
        elif section == "OBSERVERS" and cols[0] != "OBSERVER":
            out["observers"][int(cols[0])] = {"log_end": cols[2], "lag": cols[3]}
    return out


def wait_for(what: str, cond, timeout: float, cluster: Cluster):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except AssertionError as e:  # a CLI call failed: the node may be starting
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}\n"
                         f"{cluster.logs()}")


def states(info: dict) -> dict[int, str]:
    return {i: b["state"] for i, b in info["brokers"].items()}
