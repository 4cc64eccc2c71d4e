"""Network partitions for the fault harness: each broker in its own network namespace.

Namespaces `weir<pid>-b<N>`, a veth pair per broker into one bridge in the root namespace,
broker N at 10.77.<S>.N, the test process at 10.77.<S>.254 (S: a /24 no other run on this
machine uses). Brokers run under `ip netns exec`. Cutting broker N off = a blackhole route to
each peer M in N's namespace and the mirror route in M's: the peers' packets are dropped both
ways, while clients in the root namespace still reach every broker through the bridge. Only
iproute2 is needed (root; CI and the dev machines run as root). Loopback `Cluster`s are the
fallback when `available()` says why not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from cluster import Cluster
from conftest import Broker

CLIENT_PORT, INTERNAL_PORT, SQL_PORT, HTTP_PORT = 9092, 9093, 4566, 9644


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def available() -> str | None:
    """None when partitions can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network partitions need root (network namespaces); not root here"
    if shutil.which("ip") is None:
        return "network partitions need iproute2's `ip` (apt-get install iproute2)"
    probe = f"weir{os.getpid()}-probe"
    p = ip("netns", "add", probe, check=False)
    if p.returncode != 0:
        return f"`ip netns add` failed: {p.stderr.strip()}"
    # A container may allow namespaces but not bridges or veth pairs: probe what the cluster
    # builds, so such a machine runs the loopback mode instead of failing.
    bridge, veth = f"wr{os.getpid()}pb", f"wr{os.getpid()}pv"
    why = None
    for args in (("link", "add", bridge, "type", "bridge"),
                 ("link", "add", veth, "type", "veth", "peer", "name", "eth9", "netns", probe)):
        q = ip(*args, check=False)
        if q.returncode != 0:
            why = f"`ip {' '.join(args)}` failed: {q.stderr.strip()}"
            break
    ip("link", "del", veth, check=False)
    ip("link", "del", bridge, check=False)
    ip("netns", "del", probe, check=False)
    return why


def sweep_stale():
    """Removes namespaces and bridges of earlier runs whose process is gone (a killed test)."""
    for line in ip("netns", "list").stdout.splitlines():
        m = re.match(r"weir(\d+)-(b\d+|probe)\b", line)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            ip("netns", "del", line.split()[0], check=False)
    for line in ip("-o", "link", "show", "type", "bridge").stdout.splitlines():
        m = re.search(r"\d+: (wr(\d+)br)[:@]", line)
        if m and not Path(f"/proc/{m.group(2)}").exists():
            ip("link", "del", m.group(1), check=False)


def free_subnet() -> int:
    """A /24 no address on the machine uses, searched from one that depends on the pid so
    that two runs starting together rarely race for the same one."""
    used = set(int(x) for x in re.findall(r"inet 10\.77\.(\d+)\.", ip("-4", "addr").stdout))
    for k in range(249):
        s = (os.getpid() + k) % 249 + 1
        if s not in used:
            return s
    raise RuntimeError("no free 10.77.S.0/24 subnet")


class NetnsCluster(Cluster):
    """A `Cluster` whose brokers live in their own namespaces; `isolate(n)` / `heal()`."""

    def __init__(self, tmp_path: Path, n: int = 3, settings: dict | None = None):
        sweep_stale()
        pid = os.getpid()
        self.subnet = free_subnet()
        self.bridge = f"wr{pid}br"
        self.ns = {i: f"weir{pid}-b{i}" for i in range(1, n + 1)}
        self.cut: set[tuple[int, int]] = set()
        self._plumb()
        self.voters = ",".join(f"{i}@{self.addr(i)}:{INTERNAL_PORT}" for i in self.ns)
        self.nodes: dict[int, Broker] = {}
        for i in self.ns:
            s = {"node.id": str(i), "controller.quorum.voters": self.voters}
            s.update(settings or {})
            b = Broker(tmp_path / f"node{i}-data", tmp_path, settings=s, name=f"node{i}",
                       port=CLIENT_PORT, host=self.addr(i),
                       wrapper=["ip", "netns", "exec", self.ns[i]])
            b.sql_port, b.http_port = SQL_PORT, HTTP_PORT
            self.nodes[i] = b

    def addr(self, i: int) -> str:
        return f"10.77.{self.subnet}.{i}"

    def _plumb(self):
        pid = os.getpid()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"10.77.{self.subnet}.254/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, ns in self.ns.items():
            host_end, ns_end = f"wr{pid}h{i}", f"wr{pid}n{i}"
            ip("netns", "add", ns)
            ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", ns)
            ip("link", "set", host_end, "master", self.bridge)
            ip("link", "set", host_end, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", ns_end)
            ip("-n", ns, "link", "set", ns_end, "up")

    def _route(self, op: str, a: int, b: int):
        ip("-n", self.ns[a], "route", op, "blackhole", f"{self.addr(b)}/32", check=op == "add")

    def isolate(self, n: int):
        """Cuts broker n off from every other broker, both ways; clients still reach it."""
        for m in self.ns:
            if m != n and (n, m) not in self.cut:
                self._route("add", n, m)
                self._route("add", m, n)
                self.cut |= {(n, m), (m, n)}

    def heal(self):
        for a, b in sorted(self.cut):
            self._route("del", a, b)
        self.cut.clear()

    def teardown(self):
        self.kill_all()
        for ns in self.ns.values():
            ip("netns", "del", ns, check=False)
        ip("link", "del", self.bridge, check=False)
