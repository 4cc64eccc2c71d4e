"""Cluster increment 6, transactions across brokers (design §7.3): a transaction's coordinator
writes its commit or abort marker to every partition, whichever broker leads it (WriteTxnMarkers
over the internal listener for the others), and completes the transaction only once every marker
is acknowledged. confluent-kafka transactional producers on 3 brokers, topics of RF 3 whose
leaders are spread over the brokers; read_committed consumers see exactly the committed records.

The transaction coordinator fails over (§7.1, §7.2): a transactional id's coordinator is the
leader of its `__transaction_state` partition (created through the quorum at the first
FindCoordinator). SIGKILLing that broker mid-transaction or mid-commit, WITHOUT restarting it,
the shard's new leader loads the id's state: a new producer with the same transactional.id
aborts the open transaction (all of it) and goes on, a commit in flight ends committed or
aborted as a whole (committed if the client was told so), and read_committed readers see
exactly the committed records. Restarting the killed broker afterwards changes nothing.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic
from test_cluster_coordinators import java_hash

PARTITIONS = 3
TXN_PARTITIONS = 6


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={
        "min.insync.replicas": "2",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.num.partitions": str(TXN_PARTITIONS),
    }).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


def everyone(cluster: Cluster) -> str:
    return ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3))


def txn_state_partition(txn_id: str) -> int:
    """Kafka's mapping: abs(javaHash(transactional.id)) % partitions of __transaction_state."""
    h = java_hash(txn_id)
    return (0 if h == -(1 << 31) else abs(h)) % TXN_PARTITIONS


def txn_coordinator(cluster: Cluster, txn_id: str, down: tuple[int, ...] = ()) -> int:
    """The broker coordinating `txn_id`: the leader of its __transaction_state partition, as a
    live broker answers Metadata (the topic exists once a producer initialised)."""
    part = txn_state_partition(txn_id)

    def leader():
        for via in (b for b in (1, 2, 3) if b not in down):
            try:
                md = admin_client(cluster.nodes[via].bootstrap).list_topics(timeout=5)
            except KafkaException:
                continue
            t = md.topics.get("__transaction_state")
            if t is None or t.error is not None or part not in t.partitions:
                continue
            got = t.partitions[part].leader
            if got > 0 and got not in down:
                return got
        return None

    wait_for(f"the coordinator of {txn_id}", leader, 60, cluster)
    return leader()


def spread_topic(cluster: Cluster, prefix: str) -> tuple[str, dict[int, int]]:
    """A topic of PARTITIONS partitions, RF 3, and its {partition: leader}; the placement puts
    the leaders on different brokers."""
    topic = unique_topic(prefix)
    admin = admin_client(cluster.nodes[1].bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
                        request_timeout=30)[topic].result(30)

    def leaders():
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        if t is None or t.error is not None or len(t.partitions) != PARTITIONS:
            return None
        got = {p.id: p.leader for p in t.partitions.values()}
        return got if all(leader > 0 for leader in got.values()) else None

    wait_for(f"leaders for {topic}", leaders, 30, cluster)
    got = leaders()
    assert len(set(got.values())) >= 2, f"leaders spread over brokers: {got}"
    return topic, got


def txn_producer(cluster: Cluster, txn_id: str, **conf) -> Producer:
    p = Producer({"bootstrap.servers": everyone(cluster), "transactional.id": txn_id,
                  "transaction.timeout.ms": 20000, "linger.ms": 5, **conf})
    p.init_transactions(90)
    return p


def read_all(cluster: Cluster, topic: str, isolation: str, timeout: float = 60.0,
             expect: int | None = None, **conf) -> list[str]:
    """Every value of `topic` as a consumer of `isolation` reads it, until every partition is
    at its end (the LSO for read_committed) or `expect` values were read."""
    c = Consumer({"bootstrap.servers": everyone(cluster), "group.id": unique_topic("reader"),
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True, **conf})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    values: list[str] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    if expect is None and len(at_end) == PARTITIONS:
                        return values
                continue
            at_end.discard(m.partition())
            values.append(m.value().decode())
            if expect is not None and len(values) >= expect:
                return values
    finally:
        c.close()
    raise AssertionError(f"{isolation} read of {topic} incomplete: {len(values)} values, "
                         f"at end {sorted(at_end)}\n{cluster.logs()}")


def describe_partitions(cluster: Cluster, topic: str) -> str:
    """Each partition's leader, ISR and committed/uncommitted watermarks as every live broker
    answers them: what a failed read needs to be understood."""
    out = []
    for via in (1, 2, 3):
        try:
            md = admin_client(cluster.nodes[via].bootstrap).list_topics(topic, timeout=5)
            t = md.topics[topic]
            out.append(f"metadata via {via}: " + ", ".join(
                f"p{p.id} leader {p.leader} isr {sorted(p.isrs)}"
                for p in sorted(t.partitions.values(), key=lambda p: p.id)))
        except Exception as e:  # noqa: BLE001 - a diagnostic: any failure is worth printing
            out.append(f"metadata via {via}: {e}")
    for isolation in ("read_committed", "read_uncommitted"):
        c = Consumer({"bootstrap.servers": everyone(cluster), "group.id": unique_topic("wm"),
                      "isolation.level": isolation})
        marks = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                 for p in range(PARTITIONS)]
        c.close()
        out.append(f"{isolation} watermarks: {marks}")
    return "\n".join(out)


def produce_txn(p: Producer, topic: str, tag: str, per_partition: int = 5) -> list[str]:
    values = []
    for part in range(PARTITIONS):
        for i in range(per_partition):
            v = f"{tag}-{part}-{i}"
            p.produce(topic, value=v.encode(), partition=part)
            values.append(v)
    assert p.flush(60) == 0
    return values


def test_commit_and_abort_across_partitions_led_by_different_brokers(cluster):
    topic, leaders = spread_topic(cluster, "xtxn")
    p = txn_producer(cluster, unique_topic("xtxn-id"))
    committed = []
    p.begin_transaction()
    committed += produce_txn(p, topic, "c1")
    p.commit_transaction(60)
    p.begin_transaction()
    aborted = produce_txn(p, topic, "a1")
    p.abort_transaction(60)
    p.begin_transaction()
    committed += produce_txn(p, topic, "c2")
    p.commit_transaction(60)

    seen = read_all(cluster, topic, "read_committed")
    assert sorted(seen) == sorted(committed), (len(seen), len(committed))
    # The aborted records are in the logs: read_committed filtered them out.
    raw = read_all(cluster, topic, "read_uncommitted")
    assert set(aborted) <= set(raw) and len(raw) == len(committed) + len(aborted)
    print(f"\nleaders {leaders}; {len(committed)} committed, {len(aborted)} aborted records")


def test_sigkill_of_the_transaction_coordinator_mid_transaction(cluster):
    topic, leaders = spread_topic(cluster, "killtxn")
    txn_id = unique_topic("kill-id")

    # 1. Open transaction, its coordinator killed and NOT restarted: the shard's new leader
    # loads it; a new producer with the same transactional.id fences the old one and aborts
    # the open transaction, all of it; it commits more, which a reader sees.
    p = txn_producer(cluster, txn_id)
    coordinator = txn_coordinator(cluster, txn_id)
    p.begin_transaction()
    lost = produce_txn(p, topic, "open")
    cluster.nodes[coordinator].kill9()
    killed_at = time.monotonic()
    p2 = txn_producer(cluster, txn_id)
    failover = time.monotonic() - killed_at
    moved_to = txn_coordinator(cluster, txn_id, down=(coordinator,))
    assert moved_to != coordinator
    with pytest.raises(KafkaException):
        p.commit_transaction(30)    # the old producer is fenced
    p2.begin_transaction()
    kept = produce_txn(p2, topic, "after")
    p2.commit_transaction(60)
    seen = read_all(cluster, topic, "read_committed")
    assert not set(lost) & set(seen), "an uncommitted transaction became visible"
    assert sorted(seen) == sorted(kept)
    # The killed broker comes back: nothing changes.
    cluster.nodes[coordinator].restart()
    # As a live broker sees it: the restarted one answers from the image it replayed from its
    # own log until it caught up, where it is still unfenced.
    wait_for("the restarted broker unfenced",
             lambda: states(cluster.info(moved_to)).get(coordinator) == "unfenced", 60, cluster)
    after_restart = read_all(cluster, topic, "read_committed")
    if sorted(after_restart) != sorted(kept):
        diag = describe_partitions(cluster, topic)
        raw = read_all(cluster, topic, "read_uncommitted")
        again = read_all(cluster, topic, "read_committed")
        raise AssertionError(f"read_committed after the restart: {sorted(after_restart)}\n"
                             f"again: {sorted(again)}\nraw: {raw}\n{diag}\n{cluster.logs()}")

    # 2. The (current) coordinator killed while committing, NOT restarted: the client's
    # retries find the new coordinator; the transaction ends committed or aborted, never
    # half, and committed if the client was told so.
    second = txn_coordinator(cluster, txn_id)
    p2.begin_transaction()
    racing = produce_txn(p2, topic, "racing")
    outcome: dict[str, object] = {}

    def commit():
        try:
            p2.commit_transaction(120)
            outcome["ok"] = True
        except KafkaException as e:
            outcome["error"] = e

    t = threading.Thread(target=commit)
    t.start()
    time.sleep(0.05)
    cluster.nodes[second].kill9()
    t.join(150)
    assert not t.is_alive(), "commit_transaction returned"
    # A new producer fences the first and completes or aborts what was left, then commits
    # more: a read_committed reader gets past all of it.
    p3 = txn_producer(cluster, txn_id)
    p3.begin_transaction()
    last = produce_txn(p3, topic, "last")
    p3.commit_transaction(60)
    seen = read_all(cluster, topic, "read_committed")
    got = set(racing) & set(seen)
    assert got in (set(), set(racing)), f"half a transaction visible: {len(got)}/{len(racing)}"
    if outcome.get("ok"):
        assert got == set(racing), "an acknowledged commit was lost"
    assert set(last) <= set(seen) and set(kept) <= set(seen)
    assert sorted(seen) == sorted(kept + (racing if got else []) + last)
    # The killed broker comes back: nothing changes.
    cluster.nodes[second].restart()
    wait_for("the restarted broker unfenced",
             lambda: states(cluster.info(second)).get(second) == "unfenced", 60, cluster)
    assert sorted(read_all(cluster, topic, "read_committed")) == sorted(seen)
    print(f"\ncoordinators {coordinator} then {second} killed (leaders {leaders}); new "
          f"producer initialised {failover:.1f} s after the first kill; racing commit "
          f"{'committed' if got else 'aborted'} (client: {outcome})")


def test_consume_transform_produce_across_brokers(cluster):
    source, _ = spread_topic(cluster, "ctp-in")
    sink, _ = spread_topic(cluster, "ctp-out")
    group = unique_topic("ctp-g")
    src = Producer({"bootstrap.servers": everyone(cluster), "acks": "all",
                    "enable.idempotence": True})
    inputs = []
    for i in range(60):
        src.produce(source, value=f"in-{i}".encode(), partition=i % PARTITIONS)
        inputs.append(f"in-{i}")
    assert src.flush(60) == 0

    def run(limit: int, commit: bool) -> int:
        """Processes up to `limit` records in one transaction; returns how many."""
        p = txn_producer(cluster, f"{group}-txn")
        c = Consumer({"bootstrap.servers": everyone(cluster), "group.id": group,
                      "isolation.level": "read_committed", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        c.subscribe([source])
        msgs = []
        deadline = time.monotonic() + 60
        while len(msgs) < limit and time.monotonic() < deadline:
            msgs += [m for m in c.consume(limit - len(msgs), 1.0) if m.error() is None]
        p.begin_transaction()
        for m in msgs:
            p.produce(sink, value=b"out-" + m.value(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()),
                                      c.consumer_group_metadata(), 60)
        if commit:
            p.commit_transaction(60)
        else:
            p.abort_transaction(60)
        c.close()
        return len(msgs)

    first = run(30, commit=True)
    assert first == 30
    run(30, commit=False)           # its outputs and offsets are dropped
    rest = run(30, commit=True)     # resumes from the first transaction's offsets
    assert first + rest == 60, (first, rest)
    out = read_all(cluster, sink, "read_committed")
    assert sorted(out) == sorted(f"out-{v}" for v in inputs), len(out)
    check = Consumer({"bootstrap.servers": everyone(cluster), "group.id": group,
                      "enable.auto.commit": False})
    committed = check.committed([TopicPartition(source, q) for q in range(PARTITIONS)],
                                timeout=30)
    check.close()
    assert sum(tp.offset for tp in committed) == 60, committed
