"""The cluster's replication gauges and counters on /metrics (issue 13, design §2): a broker of
three is SIGKILLed; the survivors report the partitions they lead as under-replicated and count
the ISR shrinks; the broker comes back, catches up, and the expansions are counted and the
gauge drops back to 0. No partition is offline throughout (every one keeps a leader)."""

from __future__ import annotations

from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, make_producer, produce_all, unique_topic
from test_deploy import PROMETHEUS_OWN, exported, referenced
from test_metrics import scrape, value

PARTITIONS = 3


def metric(cluster: Cluster, node: int, name: str) -> float | None:
    return value(scrape(cluster.nodes[node]), name)


def test_under_replicated_partitions_and_isr_changes(tmp_path):
    cluster = Cluster(tmp_path, settings={"replica.lag.time.max.ms": "2000",
                                          "min.insync.replicas": "1"}).start()
    try:
        wait_for("three unfenced brokers", lambda: (
            (info := cluster.info(1)).get("controller")
            and states(info) == {i: "unfenced" for i in (1, 2, 3)}), 60, cluster)
        topic = unique_topic("urp")
        admin = admin_client(cluster.nodes[1].bootstrap)
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
                            request_timeout=30)[topic].result(30)
        everyone = ",".join(b.bootstrap for b in cluster.nodes.values())
        produce_all(make_producer(everyone, acks="all"),
                    ({"topic": topic, "partition": i % PARTITIONS, "value": b"x"}
                     for i in range(30)))
        # Every metric the dashboard and the alert rules use, the cluster-only ones included.
        missing = referenced() - PROMETHEUS_OWN - exported(cluster.nodes[1].http_address)
        assert not missing, sorted(missing)
        for node in (1, 2, 3):
            assert metric(cluster, node, "weir_under_replicated_partitions") == 0
            assert metric(cluster, node, "weir_offline_partitions") == 0
            assert metric(cluster, node, "weir_isr_shrinks_total") == 0

        md = admin.list_topics(topic=topic, timeout=10).topics[topic]
        kept = sum(1 for p in md.partitions.values() if p.leader != 3)
        cluster.nodes[3].kill9()

        def under_replicated():
            return sum(metric(cluster, n, "weir_under_replicated_partitions") for n in (1, 2))
        # Every partition has replicas 1, 2 and 3: with 3 gone, each one is led by 1 or 2 and
        # reported once, by its leader.
        wait_for("every partition under-replicated", lambda: under_replicated() == PARTITIONS,
                 60, cluster)
        assert all(metric(cluster, n, "weir_offline_partitions") == 0 for n in (1, 2))
        shrinks = sum(metric(cluster, n, "weir_isr_shrinks_total") for n in (1, 2))

        cluster.nodes[3].start()
        wait_for("the ISRs whole again", lambda: under_replicated() == 0, 90, cluster)
        # Every partition's leader took 3 back into its ISR.
        expands = sum(metric(cluster, n, "weir_isr_expands_total") for n in (1, 2, 3))
        assert expands >= PARTITIONS, expands
        # The partitions whose leader stayed counted a shrink there; those 3 led changed
        # leader and ISR at once, which is a new leader's start, not a shrink.
        assert shrinks >= kept, (shrinks, kept)
    finally:
        cluster.kill_all()
