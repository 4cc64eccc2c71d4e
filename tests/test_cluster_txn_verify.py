"""Issue 11, KIP-890 part 1: no hanging transactions across brokers (design §7.4).

A 200-episode fault run found a producer whose transaction timed out and was aborted by its
coordinator; its TxnOffsetCommit, delayed inside the client, then reached the group's
coordinator on another broker and was accepted: the pending offsets were never settled (the
abort marker had passed), so OffsetFetch(require_stable) answered UNSTABLE_OFFSET_COMMIT
forever. A late transactional Produce to a data partition led elsewhere has the same hazard
(the partition's last stable offset stuck forever).

Now the group coordinator and the partition leader verify such requests with the
transaction coordinator (AddPartitionsToTxn v4 `verify_only` over the internal listener) and
refuse them. These tests drive the protocol with raw frames, so that the late request is
exactly the one a delayed client would send, on 3 brokers where the transaction coordinator,
the group coordinator and the partition leader are different brokers.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import kwire
from cluster import Cluster, states, wait_for
from kwire import Conn, i8, i16, i32, i64, string
from test_cluster_coordinators import offsets_partition, offsets_topic
from test_cluster_txn import PARTITIONS, TXN_PARTITIONS, everyone, spread_topic, txn_coordinator

API_INIT_PRODUCER_ID = 22
API_ADD_PARTITIONS_TO_TXN = 24
API_ADD_OFFSETS_TO_TXN = 25
API_END_TXN = 26
API_TXN_OFFSET_COMMIT = 28

NONE = 0
LOAD_IN_PROGRESS, NOT_AVAILABLE, NOT_COORDINATOR = 14, 15, 16
NOT_ENOUGH_REPLICAS = 19
INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE = 47, 48
CONCURRENT_TRANSACTIONS = 51
PRODUCER_FENCED = 90
RETRIABLE = {LOAD_IN_PROGRESS, NOT_AVAILABLE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={
        "min.insync.replicas": "2",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.num.partitions": str(TXN_PARTITIONS),
        # The timeout test waits for the coordinator's abort.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "300",
    }).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


class Raw:
    """Raw transactional requests (non-flexible versions) to one broker."""

    def __init__(self, cluster: Cluster, broker: int):
        self.conn = Conn(cluster.nodes[broker].bootstrap, timeout=20)
        self.correlation = 100

    def close(self):
        self.conn.close()

    def call(self, key: int, version: int, body: bytes) -> kwire.Reader:
        self.correlation += 1
        r = self.conn.request(kwire.request_header_v1(key, version, self.correlation), body)
        assert r.i32() == self.correlation
        return r

    def init_producer_id(self, txn_id: str, timeout_ms: int) -> tuple[int, int, int]:
        r = self.call(API_INIT_PRODUCER_ID, 1, string(txn_id) + i32(timeout_ms))
        r.i32()
        return r.i16(), r.i64(), r.i16()

    def add_partitions(self, txn_id, pid, epoch, topic, partition) -> int:
        body = (string(txn_id) + i64(pid) + i16(epoch)
                + i32(1) + string(topic) + i32(1) + i32(partition))
        r = self.call(API_ADD_PARTITIONS_TO_TXN, 1, body)
        r.i32()
        codes = []
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                r.i32()
                codes.append(r.i16())
        assert len(codes) == 1, codes
        return codes[0]

    def add_offsets(self, txn_id, pid, epoch, group) -> int:
        r = self.call(API_ADD_OFFSETS_TO_TXN, 1,
                      string(txn_id) + i64(pid) + i16(epoch) + string(group))
        r.i32()
        return r.i16()

    def end_txn(self, txn_id, pid, epoch, commit: bool) -> int:
        r = self.call(API_END_TXN, 1, string(txn_id) + i64(pid) + i16(epoch) + i8(int(commit)))
        r.i32()
        return r.i16()

    def txn_offset_commit(self, txn_id, group, pid, epoch, topic, partition, offset) -> int:
        body = (string(txn_id) + string(group) + i64(pid) + i16(epoch)
                + i32(1) + string(topic)
                + i32(1) + i32(partition) + i64(offset) + i32(-1) + string(None))
        r = self.call(API_TXN_OFFSET_COMMIT, 2, body)
        r.i32()
        codes = []
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                r.i32()
                codes.append(r.i16())
        assert len(codes) == 1, codes
        return codes[0]

    def produce(self, txn_id, pid, epoch, seq, topic, partition, value: bytes) -> int:
        batch, _ = kwire.record_batch([(None, value, ())], producer=(pid, epoch, seq),
                                      transactional=True)
        err, _ = kwire.produce(self.conn, 7, topic, partition, batch, acks=-1,
                               correlation_id=self.next(), transactional_id=txn_id)
        return err

    def next(self) -> int:
        self.correlation += 1
        return self.correlation


def settled(call, what: str, cluster: Cluster, timeout: float = 60.0) -> int:
    """Repeats `call` while it answers a retriable coordinator error; the final code."""
    deadline = time.monotonic() + timeout
    while True:
        code = call()
        if code not in RETRIABLE or time.monotonic() > deadline:
            return code
        time.sleep(0.2)


def end_and_complete(coord: "Raw", txn_id, pid, epoch, commit: bool, cluster: Cluster):
    """EndTxn, then its retry until answered NONE: the coordinator answers a retry of the same
    decision only once every marker is written (CONCURRENT_TRANSACTIONS before)."""
    for _ in range(2):
        code = settled(lambda: coord.end_txn(txn_id, pid, epoch, commit), "EndTxn", cluster)
        assert code == NONE, code


def apart(cluster: Cluster, prefix: str, avoid: set[int], leader_of) -> tuple[str, int]:
    """The first name `prefix-N` whose broker (`leader_of(name)`) is not in `avoid`."""
    for n in range(200):
        name = f"{prefix}-{n}"
        leader = leader_of(name)
        if leader > 0 and leader not in avoid:
            return name, leader
    raise AssertionError(f"no {prefix} led outside {avoid}")


def make_offsets_topic(cluster: Cluster) -> dict:
    """Has the first FindCoordinator(GROUP) create __consumer_offsets; its {partition: leader}."""
    c = Consumer({"bootstrap.servers": everyone(cluster), "group.id": "verify-bootstrap"})
    try:
        c.committed([TopicPartition("x", 0)], timeout=30)
    except KafkaException:
        pass
    finally:
        c.close()

    def shape():
        s = offsets_topic(cluster, 1)
        return s if s and all(lead > 0 for lead, _ in s.values()) else None

    wait_for("__consumer_offsets with leaders", shape, 60, cluster)
    return {p: lead for p, (lead, _) in shape().items()}


def setup(cluster: Cluster, prefix: str):
    """A topic, a transactional id, its coordinator T, a group coordinated by G != T and a
    partition of the topic led by L != T."""
    topic, leaders = spread_topic(cluster, prefix)
    # A producer's InitProducerId makes __transaction_state exist.
    boot = Producer({"bootstrap.servers": everyone(cluster), "transactional.id": f"{prefix}-b"})
    boot.init_transactions(90)
    txn_id, coordinator = apart(cluster, f"{prefix}-txn", set(),
                                lambda name: txn_coordinator(cluster, name))
    offsets = make_offsets_topic(cluster)
    group, group_coordinator = apart(cluster, f"{prefix}-g", {coordinator},
                                     lambda name: offsets[offsets_partition(name)])
    partition = next(p for p in range(PARTITIONS) if leaders[p] != coordinator)
    return topic, txn_id, coordinator, group, group_coordinator, partition, leaders[partition]


def committed(cluster: Cluster, group: str, topic: str, partition: int) -> int:
    """The group's committed offset as a read_committed consumer fetches it (OffsetFetch with
    require_stable: a pending transactional offset makes it time out)."""
    c = Consumer({"bootstrap.servers": everyone(cluster), "group.id": group,
                  "isolation.level": "read_committed"})
    try:
        [tp] = c.committed([TopicPartition(topic, partition)], timeout=20)
        return tp.offset
    finally:
        c.close()


def test_late_txn_offset_commit_after_an_abort_is_refused_across_brokers(cluster):
    topic, txn_id, t, group, g, _, _ = setup(cluster, "late-offsets")
    print(f"transaction coordinator {t}, group coordinator {g}")
    coord, group_conn = Raw(cluster, t), Raw(cluster, g)
    try:
        err, pid, epoch = 0, -1, -1

        def init():
            nonlocal err, pid, epoch
            err, pid, epoch = coord.init_producer_id(txn_id, 60000)
            return err
        assert settled(init, "InitProducerId", cluster) == NONE

        # A committed transaction commits offset 5: verified with the coordinator on T.
        assert settled(lambda: coord.add_offsets(txn_id, pid, epoch, group), "", cluster) == NONE
        assert group_conn.txn_offset_commit(txn_id, group, pid, epoch, topic, 0, 5) == NONE
        end_and_complete(coord, txn_id, pid, epoch, True, cluster)
        assert committed(cluster, group, topic, 0) == 5

        # The next transaction commits offset 7 and is aborted; the group's coordinator gets
        # the abort marker.
        assert settled(lambda: coord.add_offsets(txn_id, pid, epoch, group), "", cluster) == NONE
        assert group_conn.txn_offset_commit(txn_id, group, pid, epoch, topic, 0, 7) == NONE
        end_and_complete(coord, txn_id, pid, epoch, False, cluster)
        assert committed(cluster, group, topic, 0) == 5

        # The delayed TxnOffsetCommit of the aborted transaction arrives now.
        late = group_conn.txn_offset_commit(txn_id, group, pid, epoch, topic, 0, 9)
        assert late == INVALID_TXN_STATE, late
        # The group stays stable: OffsetFetch(require_stable) answers at once, offset 5.
        assert committed(cluster, group, topic, 0) == 5

        # A group that was never added to the (already ended) transaction: refused as well.
        other, _ = apart(cluster, "late-offsets-h", {t}, lambda name: g)
        late = group_conn.txn_offset_commit(txn_id, other, pid, epoch, topic, 0, 9)
        assert late in (INVALID_TXN_STATE, NOT_COORDINATOR), late
    finally:
        coord.close()
        group_conn.close()


def test_late_txn_offset_commit_after_a_timeout_abort_is_refused(cluster):
    topic, txn_id, t, group, g, _, _ = setup(cluster, "timeout-offsets")
    coord, group_conn = Raw(cluster, t), Raw(cluster, g)
    try:
        err, pid, epoch = 0, -1, -1

        def init():
            nonlocal err, pid, epoch
            err, pid, epoch = coord.init_producer_id(txn_id, 1500)
            return err
        assert settled(init, "InitProducerId", cluster) == NONE
        assert settled(lambda: coord.add_offsets(txn_id, pid, epoch, group), "", cluster) == NONE
        assert group_conn.txn_offset_commit(txn_id, group, pid, epoch, topic, 0, 3) == NONE

        # The coordinator aborts the transaction at its timeout and bumps the epoch: the
        # producer's own epoch is fenced from then on.
        # (Probed with AddPartitionsToTxn: harmless while the transaction is still open.)
        def fenced():
            return coord.add_partitions(txn_id, pid, epoch, topic, 0) in (
                PRODUCER_FENCED, INVALID_PRODUCER_EPOCH)
        wait_for("the timeout abort", fenced, 30, cluster)
        # Its markers: an EndTxn under the fencing epoch is answered CONCURRENT_TRANSACTIONS
        # until the abort is complete.
        done = settled(lambda: coord.end_txn(txn_id, pid, epoch + 1, False), "EndTxn", cluster)
        assert done in (NONE, INVALID_TXN_STATE), done

        late = group_conn.txn_offset_commit(txn_id, group, pid, epoch, topic, 0, 4)
        assert late == INVALID_PRODUCER_EPOCH, late
        assert committed(cluster, group, topic, 0) == -1001, "no offset, and stable"
    finally:
        coord.close()
        group_conn.close()


def read_committed_end(cluster: Cluster, topic: str, partition: int) -> list[bytes]:
    """Every value a read_committed consumer reads from the partition up to its end (its LSO)."""
    c = Consumer({"bootstrap.servers": everyone(cluster), "group.id": f"{topic}-reader",
                  "isolation.level": "read_committed", "enable.partition.eof": True,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, 0)])
    values = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == -191 and values and values[-1] == b"marker":
                    return values
                continue
            values.append(m.value())
    finally:
        c.close()
    raise AssertionError(f"read_committed stuck before the end: {values}\n{cluster.logs()}")


def test_late_transactional_produce_after_an_abort_is_refused_across_brokers(cluster):
    topic, txn_id, t, _, _, partition, leader = setup(cluster, "late-produce")
    print(f"transaction coordinator {t}, partition {partition} led by {leader}")
    coord, data = Raw(cluster, t), Raw(cluster, leader)
    try:
        err, pid, epoch = 0, -1, -1

        def init():
            nonlocal err, pid, epoch
            err, pid, epoch = coord.init_producer_id(txn_id, 60000)
            return err
        assert settled(init, "InitProducerId", cluster) == NONE

        # Not added to the transaction: refused (no transaction is ongoing at all).
        assert data.produce(txn_id, pid, epoch, 0, topic, partition, b"unadded") \
            == INVALID_TXN_STATE
        # Added: verified with the coordinator on T and appended.
        assert settled(lambda: coord.add_partitions(txn_id, pid, epoch, topic, partition), "",
                       cluster) == NONE
        assert data.produce(txn_id, pid, epoch, 0, topic, partition, b"aborted") == NONE
        end_and_complete(coord, txn_id, pid, epoch, False, cluster)

        # The abort marker reached the partition; the delayed batch arrives after it.
        late = data.produce(txn_id, pid, epoch, 1, topic, partition, b"late")
        assert late == INVALID_TXN_STATE, late

        # The partition's last stable offset was not held back: a plain record after it is
        # read by a read_committed consumer, and nothing of the transaction is.
        p = Producer({"bootstrap.servers": everyone(cluster)})
        p.produce(topic, b"marker", partition=partition)
        assert p.flush(30) == 0
        assert read_committed_end(cluster, topic, partition) == [b"marker"]
    finally:
        coord.close()
        data.close()
