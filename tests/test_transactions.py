"""Transactional producers (confluent-kafka): committed records are visible to read_committed
consumers, aborted ones only to read_uncommitted; a zombie is fenced; a broker killed
mid-transaction finishes or aborts it after restart and the last stable offset advances."""

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from conftest import create_topic, run_weir, unique_topic


def txn_producer(bootstrap, txn_id, **conf):
    base = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    base.update(conf)
    p = Producer(base)
    p.init_transactions(30)
    return p


def read_all(bootstrap, topic, partitions, isolation, timeout=20.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "isolation.level": isolation, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        out, idle_since = [], time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - idle_since < 2.0:
            msgs = c.consume(1000, 0.3)
            if msgs:
                idle_since = time.monotonic()
            for m in msgs:
                if m.error() is None:
                    out.append(m.value().decode())
        return sorted(out, key=lambda v: int(v.split("-")[1]))
    finally:
        c.close()


def test_commit_abort_and_isolation(broker):
    topic = create_topic(broker.bootstrap, unique_topic("txn"), 2)
    p = txn_producer(broker.bootstrap, unique_topic("tid"))
    p.begin_transaction()
    for i in range(100):
        p.produce(topic, value=f"c-{i}".encode(), partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(100, 150):
        p.produce(topic, value=f"a-{i}".encode(), partition=i % 2)
    p.flush(30)  # make sure they reach the log before the abort (abort purges unsent ones)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(150, 200):
        p.produce(topic, value=f"c-{i}".encode(), partition=i % 2)
    p.commit_transaction(30)

    committed = read_all(broker.bootstrap, topic, [0, 1], "read_committed")
    assert committed == [f"c-{i}" for i in list(range(100)) + list(range(150, 200))]
    everything = read_all(broker.bootstrap, topic, [0, 1], "read_uncommitted")
    assert len(everything) == 200
    assert sum(v.startswith("a-") for v in everything) == 50


def test_zombie_is_fenced(broker):
    topic = create_topic(broker.bootstrap, unique_topic("zombie"), 1)
    tid = unique_topic("tid")
    old = txn_producer(broker.bootstrap, tid)
    old.begin_transaction()
    old.produce(topic, value=b"z-0")
    old.flush(10)
    new = txn_producer(broker.bootstrap, tid)  # bumps the epoch, aborts old's transaction
    with pytest.raises(KafkaException):
        old.produce(topic, value=b"z-1")
        old.commit_transaction(10)
    new.begin_transaction()
    new.produce(topic, value=b"n-2")
    new.commit_transaction(30)
    assert read_all(broker.bootstrap, topic, [0], "read_committed") == ["n-2"]


def test_broker_killed_mid_transaction_leaves_nothing_hanging(broker_factory):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique_topic("crash"), 1)
    p = txn_producer(b.bootstrap, unique_topic("tid"), **{"transaction.timeout.ms": 3000})
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=f"x-{i}".encode())
    p.flush(10)
    b.kill9()
    b.start()
    # The open transaction times out (3 s) and the coordinator aborts it: the LSO reaches
    # the log end and read_committed readers see nothing from it.
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused", "isolation.level": "read_committed"})
    deadline = time.monotonic() + 30
    lso = None
    while time.monotonic() < deadline:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5, cached=False)
        if hi >= 11:  # 10 records + the abort marker
            lso = hi
            break
        time.sleep(0.5)
    c.close()
    assert lso is not None, "the transaction was never aborted"
    assert read_all(b.bootstrap, topic, [0], "read_committed") == []


def rows(output):
    """A `weir` table as a list of dicts keyed by its header."""
    lines = [l.split() for l in output.strip().splitlines()]
    return [dict(zip(lines[0], l)) for l in lines[1:]]


def test_operator_view_of_transactions(broker):
    """`weir txn list|describe|producers` (ListTransactions, DescribeTransactions and
    DescribeProducers) show an open transaction, the partitions in it and what holds each
    partition's last stable offset back; then its completion. Under WEIR_CLUSTER the CLI asks
    every broker for the list, the id's coordinator for its description and each partition's
    leader for its producers."""
    topic = create_topic(broker.bootstrap, unique_topic("ops"), 2)
    tid = unique_topic("tid")
    p = txn_producer(broker.bootstrap, tid)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=f"o-{i}".encode(), partition=1)
    p.flush(10)
    b = ["-b", broker.bootstrap]

    listed = rows(run_weir("txn", "list", *b).stdout)
    mine = [r for r in listed if r["TRANSACTIONAL-ID"] == tid]
    assert len(mine) == 1 and mine[0]["STATE"] == "Ongoing", listed
    assert any(r["TRANSACTIONAL-ID"] == tid for r in rows(run_weir("txn", "list", "--state", "Ongoing", *b).stdout))
    assert not any(r["TRANSACTIONAL-ID"] == tid
                   for r in rows(run_weir("txn", "list", "--state", "CompleteCommit", *b).stdout))

    (d,) = rows(run_weir("txn", "describe", tid, *b).stdout)
    assert d["STATE"] == "Ongoing"
    assert d["PARTITIONS"] == f"{topic}/1"
    assert d["PRODUCER-ID"] == mine[0]["PRODUCER-ID"]
    assert int(d["STARTED-MS"]) > 0

    producers = rows(run_weir("txn", "producers", topic, *b).stdout)
    assert [(r["PARTITION"], r["PRODUCER-ID"], r["TXN-START-OFFSET"]) for r in producers] == \
        [("1", d["PRODUCER-ID"], "0")]
    assert producers[0]["LAST-SEQUENCE"] == "4"

    p.commit_transaction(30)
    (d,) = rows(run_weir("txn", "describe", tid, *b).stdout)
    assert d["STATE"] == "CompleteCommit"
    assert d["PARTITIONS"] == "-"
    producers = rows(run_weir("txn", "producers", topic, "-p", "1", *b).stdout)
    assert producers[0]["TXN-START-OFFSET"] == "-"

    missing = run_weir("txn", "describe", "no-such-id", *b, check=False)
    assert missing.returncode != 0
    assert "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr, missing.stderr


def test_transaction_timeouts_are_bounded_by_the_broker(broker_factory):
    """`transaction.max.timeout.ms` refuses a producer that asks for more
    (INVALID_TRANSACTION_TIMEOUT), and accepts one within it."""
    b = broker_factory(settings={"transaction.max.timeout.ms": "5000"})
    with pytest.raises(KafkaException) as e:
        txn_producer(b.bootstrap, unique_topic("tid"), **{"transaction.timeout.ms": 60000})
    assert "INVALID_TRANSACTION_TIMEOUT" in str(e.value), e.value
    p = txn_producer(b.bootstrap, unique_topic("tid"), **{"transaction.timeout.ms": 5000})
    p.begin_transaction()
    p.abort_transaction(10)
