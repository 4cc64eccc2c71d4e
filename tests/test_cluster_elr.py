"""Eligible leader replicas (KIP-966 part 1, docs/design/cluster.md §5.5) with real brokers: a
partition of RF 2 with `min.insync.replicas=2` on a 5-voter cluster (so the metadata quorum
outlives both replicas). Its replicas are SIGKILLed one by one: the first leaves the ISR below
min ISR and becomes an ELR, the second (the last ISR member) empties the ISR. The last ISR
member stays down; the ELR member restarts and is elected leader (before this, the partition
waited for its last leader). Then the last leader returns as a follower, and every record
acknowledged before the faults is read back at its offset.

`weir cluster info` shows ELR and last known ELR columns for under-replicated and offline
partitions; Metadata (confluent-kafka) shows the leader.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, run_weir, unique_topic, watermarks

pytestmark = pytest.mark.timeout(600)

SECTIONS = ("UNDER-REPLICATED PARTITIONS", "OFFLINE PARTITIONS")


def partition_row(c: Cluster, via: int, topic: str) -> dict | None:
    """The partition's row in `weir cluster info` asked of `via` (None: healthy), lists as
    lists of ints."""
    out = run_weir("cluster", "info", "-b", c.nodes[via].bootstrap, timeout=30).stdout
    section, header = None, None
    for line in out.splitlines():
        if line.strip() in SECTIONS:
            section, header = line.strip(), None
            continue
        cols = line.split()
        if section is None or not cols:
            continue
        if header is None:
            header = cols
            continue
        row = dict(zip(header, cols))
        if row.get("TOPIC") == topic:
            ids = (lambda v: [] if v == "-" else [int(x) for x in v.split(",")])
            return {"leader": int(row["LEADER"]), "isr": ids(row["ISR"]),
                    "elr": ids(row["ELR"]), "last_known_elr": ids(row["LAST-KNOWN-ELR"])}
    return None


def produce(bootstrap: str, topic: str, values: list[str], timeout_ms: int) -> dict[str, tuple]:
    """acks=all sends; value -> (offset, error or None) as the delivery reports say."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": timeout_ms, "linger.ms": 5})
    got: dict[str, tuple] = {}

    def cb(err, msg):
        got[msg.value().decode()] = (msg.offset(), err)

    for v in values:
        p.produce(topic, value=v.encode(), partition=0, on_delivery=cb)
        p.poll(0)
    left = p.flush(timeout_ms / 1000 + 30)
    assert left == 0, f"{left} sends unanswered"
    return got


def read_all(bootstrap: str, topic: str) -> dict[int, str]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    c.assign([TopicPartition(topic, 0, 0)])
    out: dict[int, str] = {}
    deadline = time.monotonic() + 60
    while len(out) < high and time.monotonic() < deadline:
        for m in c.consume(500, 1.0):
            if m.error() is None:
                out[m.offset()] = m.value().decode()
            elif m.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(m.error())
    c.close()
    return out


def test_an_elr_member_leads_while_the_last_isr_member_stays_down(tmp_path):
    c = Cluster(tmp_path, n=5, settings={"min.insync.replicas": "2"}).start()
    try:
        wait_for("a controller and five unfenced brokers", lambda: (
            (info := c.info(3)).get("controller")
            and states(info) == {i: "unfenced" for i in c.nodes}), 90, c)
        everyone = ",".join(b.bootstrap for b in c.nodes.values())
        topic = unique_topic("elr")
        admin = admin_client(everyone)
        admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2]])],
                            request_timeout=30)[topic].result(30)

        def metadata():
            md = admin_client(c.nodes[3].bootstrap).list_topics(topic=topic, timeout=10)
            p = md.topics[topic].partitions[0]
            return p.leader, sorted(p.isrs)

        wait_for("leader 1, ISR [1, 2]", lambda: metadata() == (1, [1, 2]), 30, c)
        before = produce(everyone, topic, [f"v{i}" for i in range(300)], 30000)
        assert all(err is None for _, err in before.values()), before
        acked = {off: v for v, (off, _) in before.items()}

        # 2 goes: the ISR [1] is below min ISR, the high watermark stops, 2 is eligible.
        c.nodes[2].kill9()
        row = wait_for("ISR [1], ELR [2]", lambda: (
            r if (r := partition_row(c, 3, topic)) and r["isr"] == [1] and r["elr"] == [2]
            else None), 60, c)
        assert row["leader"] == 1 and row["last_known_elr"] == []
        refused = produce(everyone, topic, [f"late{i}" for i in range(5)], 3000)
        assert all(err is not None for _, err in refused.values()), \
            f"acks=all acknowledged with the ISR below min.insync.replicas: {refused}"

        # 1, the last ISR member, goes: the ISR empties, both are eligible, 1 was the last.
        c.nodes[1].kill9()
        row = wait_for("an empty ISR, ELR [1, 2]", lambda: (
            r if (r := partition_row(c, 3, topic)) and r["isr"] == [] and r["elr"] == [1, 2]
            else None), 60, c)
        assert row["leader"] == -1 and row["last_known_elr"] == [1]

        # The ELR member returns while 1 stays down: it is elected, its ISR is itself.
        c.nodes[2].start()
        row = wait_for("2 leads with ISR [2]", lambda: (
            r if (r := partition_row(c, 3, topic)) and r["leader"] == 2 else None), 60, c)
        assert (row["isr"], row["elr"], row["last_known_elr"]) == ([2], [1], [])
        assert wait_for("Metadata names 2 the leader", lambda: metadata()[0] == 2, 30, c)
        assert not c.nodes[1].alive(), "the last ISR member stayed down throughout"

        # The last leader returns as 2's follower and rejoins: at min ISR, the ELR is cleared
        # and the high watermark moves; everything acknowledged is there, at its offset.
        c.nodes[1].start()
        wait_for("ISR [1, 2] and no ELR", lambda: partition_row(c, 3, topic) is None, 90, c)
        assert metadata() == (2, [1, 2])
        top = max(acked) + 1
        wait_for(f"the high watermark at {top}", lambda: watermarks(
            c.nodes[2].bootstrap, topic, 0)[1] >= top, 30, c)
        log = read_all(everyone, topic)
        lost = {o: v for o, v in acked.items() if log.get(o) != v}
        assert not lost, f"{len(lost)} acknowledged records lost or moved: {sorted(lost)[:10]}"
        after = produce(everyone, topic, ["after"], 30000)
        assert after["after"][1] is None, after
        print(f"\n{len(acked)} acknowledged records read back after the ELR election; "
              f"{len(refused)} sends refused while the ISR was below min ISR", flush=True)
    finally:
        c.kill_all()
