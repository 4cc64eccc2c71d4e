"""Cluster increment 5: partitions replicated over 3 brokers. An idempotent acks=all producer
writes to a replication-factor-3 topic while the leader of its partitions is SIGKILLed: every
record the producer saw acknowledged is read back at its acknowledged offset, once, from the
brokers that survived; the killed broker comes back, catches up and rejoins every ISR.
The time from the kill to the first acknowledged write on a partition the dead broker led is
printed (the failover figure of the issue).
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic

PARTITIONS = 3


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={"min.insync.replicas": "2"}).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


def partitions_of(cluster: Cluster, via: int, topic: str):
    """{partition: (leader, replicas, isr)} as broker `via` answers Metadata, or None while a
    partition has no leader."""
    md = admin_client(cluster.nodes[via].bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None or len(t.partitions) != PARTITIONS:
        return None
    out = {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}
    if any(leader < 0 for leader, _, _ in out.values()):
        return None
    return out


class Recorder:
    """An idempotent acks=all producer writing value i to partition i % PARTITIONS in a thread;
    remembers what was acknowledged where, and when."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 2, "message.timeout.ms": 60000, "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 200, "topic.metadata.refresh.interval.ms": 1000,
        })
        self.acked: dict[bytes, tuple[int, int, float]] = {}
        self.failed: list[str] = []
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err, msg):
        if err is not None:
            self.failed.append(f"{msg.value()!r}: {err}")
        else:
            self.acked[msg.value()] = (msg.partition(), msg.offset(), time.monotonic())

    def _run(self):
        while not self.stop.is_set():
            value = f"v{self.sent}".encode()
            try:
                self.producer.produce(self.topic, value=value, partition=self.sent % PARTITIONS,
                                      on_delivery=self._delivered)
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.002 if self.sent % 20 == 0 else 0)
        self.producer.flush(90)

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join(120)
        assert not self.thread.is_alive(), "the producer did not flush in time"


def read_all(bootstrap: str, topic: str, ends: dict[int, int]) -> dict[int, dict[int, bytes]]:
    """Every record of every partition up to `ends`, read_committed, as {partition: {offset: v}}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
    deadline = time.monotonic() + 60
    while any(len(got[p]) < ends[p] for p in ends) and time.monotonic() < deadline:
        for m in c.consume(500, 1.0):
            if m.error() is None:
                got[m.partition()][m.offset()] = m.value()
            elif m.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(m.error())
    c.close()
    return got


def test_acknowledged_records_survive_sigkill_of_the_leader(cluster):
    topic = unique_topic("rf3")
    everyone = ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3))
    admin = admin_client(cluster.nodes[1].bootstrap)  # held: the futures need their handle
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
                        request_timeout=30)[topic].result(30)
    before = wait_for(f"{topic} led, ISR of 3", lambda: (
        (p := partitions_of(cluster, 1, topic))
        and all(len(isr) == 3 for _, _, isr in p.values()) and p), 30, cluster)

    rec = Recorder(everyone, topic).start()
    wait_for("1,000 acknowledged records", lambda: len(rec.acked) >= 1000, 60, cluster)

    victim = before[0][0]
    led = {p for p, (leader, _, _) in before.items() if leader == victim}
    cluster.nodes[victim].kill9()
    killed_at = time.monotonic()

    def failed_over():
        return any(p in led and at > killed_at for p, _, at in list(rec.acked.values()))

    wait_for(f"an acknowledged write on a partition broker {victim} led", failed_over, 60,
             cluster)
    failover = min(at for p, _, at in list(rec.acked.values()) if p in led and at > killed_at)
    print(f"\nfailover after SIGKILL of leader {victim}: {failover - killed_at:.2f} s")
    survivor = next(i for i in (1, 2, 3) if i != victim)
    after = wait_for("new leaders, the dead broker out of the ISR", lambda: (
        (p := partitions_of(cluster, survivor, topic))
        and all(leader != victim and victim not in isr for leader, _, isr in p.values()) and p),
        30, cluster)
    for p in led:
        assert after[p][0] in before[p][2], (before, after)  # elected from the ISR

    acked_before_restart = len(rec.acked)
    wait_for("more records acknowledged by the survivors",
             lambda: len(rec.acked) >= acked_before_restart + 500, 60, cluster)
    cluster.nodes[victim].start()
    wait_for(f"broker {victim} back in every ISR", lambda: (
        (p := partitions_of(cluster, survivor, topic))
        and all(len(isr) == 3 for _, _, isr in p.values())), 60, cluster)
    rec.finish()
    assert not rec.failed, rec.failed[:5]

    # Every acknowledged record is at its acknowledged offset, and nothing is there twice.
    ends = {p: 0 for p in range(PARTITIONS)}
    for p, off, _ in rec.acked.values():
        ends[p] = max(ends[p], off + 1)
    got = read_all(everyone, topic, ends)
    for value, (p, off, _) in rec.acked.items():
        assert got[p].get(off) == value, (value, p, off, got[p].get(off))
    values = [v for per in got.values() for v in per.values()]
    assert len(values) == len(set(values)), "a record is in the log twice"
    print(f"{len(rec.acked)} acknowledged records read back from {PARTITIONS} partitions")

