"""Issue 11: no idempotent duplicates across leader changes (3 brokers, RF 3).

The 200-episode fault run found a record twice in one partition: written under producer epoch
0 by the old leader, then again under epoch 1 by the new one. librdkafka bumps an idempotent
producer's epoch (and re-sends every unacknowledged record under new sequence numbers, on every
partition) when a broker answers OUT_OF_ORDER_SEQUENCE_NUMBER to a request that is not the
oldest in flight ("skipped sequence numbers", rdkafka_request.c). A new leader gave that answer
when it had refused the batch before it as NOT_LEADER_OR_FOLLOWER on the same connection (the
image named it leader a moment before its replica led) and then led for the next, pipelined
batch. A record the old leader had written but not acknowledged then came back under the new
epoch, which no broker can recognise as a retry. This test's first runs with that fixed found
a second way to the same answer: the old leader refused R1, and librdkafka sent R2 to the new
leader before re-sending R1. Both gaps are now answered NOT_LEADER_OR_FOLLOWER (retriable).
On main this test failed in 1 of 3 runs (100 duplicated records); it is a race, so a pass on
a broken broker is possible, a failure is always real.

`test_leader_changes_never_make_an_idempotent_producer_bump_its_epoch` writes as fast as a
librdkafka idempotent producer (acks=all, 5 requests in flight) can into 6 partitions while
the leader of most partitions is SIGKILLed and restarted, and leaderships move back to their
preferred brokers; then it reads every partition back. Each value must be there exactly once,
and librdkafka's own log (`debug=eos,msg`) must show no epoch bump and no fatal error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import ElectionType, Producer, TopicPartition as CKTopicPartition
from confluent_kafka.admin import NewTopic
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from cluster import Cluster, states, wait_for
from conftest import admin_client, consume_partitions, unique_topic

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 6
KILLS = 2
MOVES = 12  # rounds of moving every leadership to another live broker


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={"min.insync.replicas": "2",
                                    # Leaderships move back soon after a restart: more changes.
                                    "leader.imbalance.check.interval.seconds": "2"}).start()
    wait_for("a controller and three unfenced brokers", lambda: (
        (info := c.info(1)).get("controller")
        and states(info) == {i: "unfenced" for i in (1, 2, 3)}), 90, c)
    yield c
    c.kill_all()


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    t = admin_client(bootstrap).list_topics(topic, timeout=5).topics[topic]
    return {p.id: p.leader for p in t.partitions.values()}


class Writer(threading.Thread):
    """One idempotent producer writing unique values as fast as it can until stopped."""

    def __init__(self, bootstrap: str, topic: str, log_path):
        super().__init__(daemon=True)
        self.topic = topic
        self.stop = threading.Event()
        self.acked: set[str] = set()
        self.errors: list[str] = []
        self.sent = 0
        logger = logging.getLogger(f"rdkafka-{topic}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
        logger.addHandler(handler)
        self.log_path = log_path
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 2, "batch.num.messages": 50,
            "max.in.flight.requests.per.connection": 5,
            "debug": "eos,msg", "logger": logger,
        })

    def _delivered(self, err, msg):
        if err is None:
            self.acked.add(msg.value().decode())
        else:
            self.errors.append(f"{msg.value().decode()}: {err}")

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, value=f"v-{i}".encode(), partition=i % PARTITIONS,
                                      on_delivery=self._delivered)
                i += 1
            except BufferError:
                self.producer.poll(0.01)
            if i % 200 == 0:
                self.producer.poll(0)
        self.sent = i
        self.left = self.producer.flush(120)


def test_leader_changes_never_make_an_idempotent_producer_bump_its_epoch(cluster, tmp_path):
    topic = unique_topic("idem")
    admin = admin_client(cluster.nodes[1].bootstrap)  # held: the futures need their handle
    admin.create_topics([NewTopic(topic, PARTITIONS, 3)], request_timeout=30)[topic].result(30)
    everyone = ",".join(n.bootstrap for n in cluster.nodes.values())
    wait_for("every partition led", lambda: all(
        lead > 0 for lead in leaders(everyone, topic).values()), 30, cluster)
    writer = Writer(everyone, topic, tmp_path / "rdkafka.log")
    writer.start()
    kp = KafkaAdminClient(bootstrap_servers=everyone)
    try:
        time.sleep(1.0)
        for move in range(MOVES):
            # Rotate every replica list (same replicas, another preferred leader), then elect.
            res = kp.alter_partition_reassignments(
                {TopicPartition(topic, p): [[1, 2, 3][(p + move + 1 + k) % 3] for k in range(3)]
                 for p in range(PARTITIONS)})
            assert set(res.values()) == {None}, res
            admin.elect_leaders(ElectionType.PREFERRED, [
                CKTopicPartition(topic, p) for p in range(PARTITIONS)]).result(30)
            time.sleep(0.8)
        for _ in range(KILLS):
            time.sleep(2.0)
            lead = Counter(leaders(everyone, topic).values())
            victim = max((b for b in lead if b > 0), key=lambda b: lead[b])
            cluster.nodes[victim].kill9()
            time.sleep(1.5)
            cluster.nodes[victim].start()
            wait_for(f"broker {victim} unfenced again", lambda: states(cluster.info(
                next(i for i in (1, 2, 3) if i != victim)))[victim] == "unfenced", 60, cluster)
        time.sleep(4.0)  # leaderships move back to the restarted brokers meanwhile
    finally:
        kp.close()
        writer.stop.set()
        writer.join(150)
    assert not writer.is_alive(), "the producer did not flush within 120 s"
    assert writer.left == 0, f"{writer.left} records never delivered"
    assert not writer.errors, f"{len(writer.errors)} delivery errors, first: {writer.errors[:5]}"
    log = writer.log_path.read_text(errors="replace")
    bumps = [line for line in log.splitlines()
             if "skipped sequence numbers" in line or "bumped epoch" in line.lower()
             or "FATAL" in line or "Fatal error" in line]
    got = consume_partitions(everyone, topic, range(PARTITIONS), timeout=60)
    values = Counter(m.value().decode() for msgs in got.values() for m in msgs)
    twice = {v: n for v, n in values.items() if n > 1}
    lost = writer.acked - set(values)
    print(f"\n{writer.sent} records sent, {len(writer.acked)} acknowledged, "
          f"{sum(values.values())} read back; {len(twice)} duplicated; "
          f"{len(bumps)} epoch-bump lines in the client log", flush=True)
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
    assert not twice, f"{len(twice)} records written twice, e.g. {list(twice.items())[:5]}"
    assert not bumps, "librdkafka bumped its epoch (an out-of-order answer):\n" + \
        "\n".join(bumps[:10])
