"""Cluster increment 6: group coordinators fail over. Committed offsets live in the replicated
`__consumer_offsets` (created through the quorum at the first FindCoordinator), each group's
coordinator is the leader of its partition; when that broker is SIGKILLed the group finds the new
leader, every acknowledged commit is still there (none goes backwards), and consumption resumes
from the last commit without re-reading anything before it.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic

PARTITIONS = 3
OFFSETS_PARTITIONS = 6
RECORDS = 240


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={
        "min.insync.replicas": "2",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
    }).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


def java_hash(s: str) -> int:
    """Java's String.hashCode, as a signed 32-bit int."""
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group: str) -> int:
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % OFFSETS_PARTITIONS


def test_java_hash_matches_java():
    assert java_hash("hello") == 99162322
    assert java_hash("my-group") == -1906497762


def offsets_topic(cluster: Cluster, via: int):
    """{partition: (leader, replicas)} of __consumer_offsets as broker `via` answers Metadata."""
    md = admin_client(cluster.nodes[via].bootstrap).list_topics(timeout=10)
    t = md.topics.get("__consumer_offsets")
    if t is None or t.error is not None:
        return None
    return {p.id: (p.leader, sorted(p.replicas)) for p in t.partitions.values()}


# A member the coordinator no longer knows (membership is not logged: a failover makes a
# classic group rebalance, design §7.2) must rejoin; its uncommitted record comes again.
REJOIN = (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
          KafkaError.REBALANCE_IN_PROGRESS)


def commit(consumer: Consumer, tp: TopicPartition, acked: dict, deadline: float):
    """Commits synchronously, retrying until acknowledged (recorded), or until the consumer
    must rejoin its group first."""
    while True:
        try:
            consumer.commit(offsets=[tp], asynchronous=False)
            acked[tp.partition] = tp.offset
            return
        except KafkaException as e:
            if e.args[0].code() in REJOIN:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"commit of {tp} never acknowledged: {e}")
            time.sleep(0.2)


def test_committed_offsets_survive_sigkill_of_the_group_coordinator(cluster):
    topic = unique_topic("grp")
    group = unique_topic("g")
    everyone = ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3))
    admin = admin_client(cluster.nodes[1].bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
                        request_timeout=30)[topic].result(30)
    p = Producer({"bootstrap.servers": everyone, "acks": "all", "enable.idempotence": True})
    for i in range(RECORDS):
        p.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
    assert p.flush(60) == 0

    consumer = Consumer({
        "bootstrap.servers": everyone, "group.id": group, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500, "topic.metadata.refresh.interval.ms": 1000,
    })
    consumer.subscribe([topic])
    acked: dict[int, int] = {}       # partition -> last acknowledged committed offset
    seen: list[tuple[int, int, float]] = []   # (partition, offset, when)

    def consume_until(n: int, timeout: float):
        deadline = time.monotonic() + timeout
        while len({(q, o) for q, o, _ in seen}) < n and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None or m.error() is not None:
                continue
            seen.append((m.partition(), m.offset(), time.monotonic()))
            commit(consumer, TopicPartition(topic, m.partition(), m.offset() + 1), acked,
                   time.monotonic() + 60)
        distinct = len({(q, o) for q, o, _ in seen})
        assert distinct >= n, f"consumed {distinct} of {n}\n{cluster.logs()}"

    consume_until(RECORDS // 2, 90)

    # __consumer_offsets was created at the first FindCoordinator, replicated on every broker.
    shape = offsets_topic(cluster, 1)
    assert shape is not None and len(shape) == OFFSETS_PARTITIONS, shape
    assert all(replicas == [1, 2, 3] for _, replicas in shape.values()), shape
    coordinator = shape[offsets_partition(group)][0]
    described = admin.describe_consumer_groups([group])[group].result(30)
    assert described.coordinator.id == coordinator, (described.coordinator, coordinator)

    before = dict(acked)
    cluster.nodes[coordinator].kill9()
    killed_at = time.monotonic()
    survivor = next(i for i in (1, 2, 3) if i != coordinator)
    wait_for("a new leader for the group's offsets partition", lambda: (
        (s := offsets_topic(cluster, survivor))
        and s[offsets_partition(group)][0] not in (-1, coordinator)), 30, cluster)

    consume_until(RECORDS, 120)
    after_kill = [(part, off) for part, off, at in seen if at > killed_at]
    # Resumed from the last acknowledged commit: nothing below it is read again.
    for part, off in after_kill:
        assert off >= before.get(part, 0), (part, off, before)
    # Every record consumed.
    offsets = {(part, off) for part, off, _ in seen}
    assert len(offsets) == RECORDS, len(offsets)
    consumer.close()

    # A fresh member of the group fetches exactly the acknowledged commits, none behind.
    check = Consumer({"bootstrap.servers": everyone, "group.id": group,
                      "enable.auto.commit": False})
    committed = check.committed([TopicPartition(topic, q) for q in range(PARTITIONS)], timeout=30)
    check.close()
    got = {tp.partition: tp.offset for tp in committed}
    assert got == acked, (got, acked)
    assert all(got[q] >= before.get(q, 0) for q in got)
    assert got == {q: RECORDS // PARTITIONS for q in range(PARTITIONS)}, got
    new_coordinator = offsets_topic(cluster, survivor)[offsets_partition(group)][0]
    print(f"\ngroup coordinator {coordinator} killed; {new_coordinator} took over; "
          f"{len(after_kill)} records consumed after the kill")
