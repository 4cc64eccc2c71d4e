"""Failover time on a 3-broker cluster with default settings (issue 11): a probe producer (the fault
harness's `Probe`: acks=all to every partition every 10 ms) runs while, episode after episode, the
leader of a partition is SIGKILLed, alternately a broker that is not the active controller and
the active controller itself (which then also leads some partition). Failover = first
acknowledged send *sent after* the kill to a partition the victim led, minus the kill time.
Each episode restarts the victim and waits until every ISR is whole again.

Prints every episode and p50/p99 per kind and overall; nothing is asserted about time (the
figures depend on the machine), only that every episode fails over within 60 s and the probe
reported no error. `WEIR_FAILOVER_KILLS` sets the number of episodes (default 6);
`WEIR_FAILOVER_SET="key=value,..."` adds broker settings (to compare timeouts in one run's
conditions, e.g. `controller.quorum.election.timeout.ms=1000`).
"""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic
from fault_workload import Probe
from history import percentile

pytestmark = pytest.mark.timeout(1200)

PARTITIONS = 3
KILLS = int(os.environ.get("WEIR_FAILOVER_KILLS", "6"))
EXTRA = dict(kv.split("=", 1) for kv in os.environ.get("WEIR_FAILOVER_SET", "").split(",") if kv)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={"min.insync.replicas": "2", **EXTRA}).start()
    wait_for("a controller and three unfenced brokers", lambda: (
        (info := c.info(1)).get("controller")
        and states(info) == {i: "unfenced" for i in (1, 2, 3)}), 90, c)
    yield c
    c.kill_all()


def leaders(c: Cluster, via: int, topic: str) -> dict[int, tuple[int, int]] | None:
    """{partition: (leader, ISR size)} as broker `via` answers Metadata; None while any
    partition has no leader or the answer fails."""
    try:
        t = admin_client(c.nodes[via].bootstrap).list_topics(topic, timeout=5).topics[topic]
    except Exception:  # the broker is restarting
        return None
    if t.error is not None or len(t.partitions) != PARTITIONS:
        return None
    out = {p.id: (p.leader, len(p.isrs)) for p in t.partitions.values()}
    return None if any(lead < 0 for lead, _ in out.values()) else out


def whole(c: Cluster, topic: str):
    """The leaders once every broker is unfenced and every ISR holds all three replicas, as
    every broker answers."""
    info = c.info(1)
    if not info.get("controller") or states(info) != {i: "unfenced" for i in (1, 2, 3)}:
        return None
    views = [leaders(c, i, topic) for i in (1, 2, 3)]
    if any(v is None or any(n != 3 for _, n in v.values()) for v in views):
        return None
    return views[0] if all(v == views[0] for v in views) else None


def test_failover_time_after_sigkill_of_a_leader(cluster):
    topic = unique_topic("failover")
    admin = admin_client(cluster.nodes[1].bootstrap)  # held: the futures need their handle
    admin.create_topics([NewTopic(topic, PARTITIONS, 3)], request_timeout=30)[topic].result(30)
    everyone = ",".join(n.bootstrap for n in cluster.nodes.values())
    probe = Probe(everyone, topic, PARTITIONS).start()
    figures: dict[str, list[float]] = {"leader": [], "controller and leader": []}
    try:
        for episode in range(KILLS):
            lead = wait_for("every ISR whole", lambda: whole(cluster, topic), 90, cluster)
            time.sleep(1.0)  # the probe writes through the healed cluster for a moment
            controller = cluster.info(1)["controller"]
            leading = {b for b, _ in lead.values()}
            want_controller = episode % 2 == 1
            if want_controller and controller in leading:
                victim, kind = controller, "controller and leader"
            else:
                victim = next(b for b in sorted(leading) if b != controller) \
                    if leading - {controller} else controller
                kind = "controller and leader" if victim == controller else "leader"
            led = {p for p, (b, _) in lead.items() if b == victim}
            cluster.nodes[victim].kill9()
            killed_at = time.monotonic()
            deadline = killed_at + 60
            while (fo := probe.failover(led, killed_at)) is None:
                assert time.monotonic() < deadline, \
                    f"no acknowledged write on {led} 60 s after killing {victim}\n{cluster.logs()}"
                time.sleep(0.01)
            figures[kind].append(fo)
            print(f"\nepisode {episode}: killed broker {victim} ({kind}; controller was "
                  f"{controller}), leader of {sorted(led)}: failover {fo:.2f} s", flush=True)
            time.sleep(1.0)
            cluster.nodes[victim].start()
    finally:
        probe.finish(60)
    assert not probe.errors, probe.errors
    every = [x for xs in figures.values() for x in xs]
    print(f"\nfailover after SIGKILL, {len(every)} episodes (settings beyond the defaults: "
          f"{EXTRA or 'none'}):")
    for kind, xs in [*figures.items(), ("all", every)]:
        if xs:
            print(f"  {kind:>22}: n={len(xs)} p50 {percentile(xs, 50):.2f} s, "
                  f"p99 {percentile(xs, 99):.2f} s, max {max(xs):.2f} s (aim p99 < 5 s)")
