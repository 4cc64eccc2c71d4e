"""Exactly-once across a crash after many segment rolls (confluent-kafka): a transaction
opened long before the broker is killed with SIGKILL stays invisible to read_committed
readers after the restart, and once its timeout aborts it, it stays invisible; committed
transactions and plain records are visible, aborted ones never.

The partition's producer state after a crash comes from the producer snapshot of the last
roll plus a replay of what follows it, so the open transaction's first offset, many segments
back, is known again."""

import time

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import create_topic, make_producer, produce_all, unique_topic

SEGMENT_BYTES = 2048
OPEN_TIMEOUT_MS = 12000


def txn_producer(bootstrap, txn_id, **conf):
    base = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    base.update(conf)
    p = Producer(base)
    p.init_transactions(30)
    return p


def consume(bootstrap, topic, isolation, timeout=20.0):
    """Every value in the partition visible at `isolation`, read until idle for 2 s."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "isolation.level": isolation})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out, idle_since = [], time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - idle_since < 2.0:
            msgs = c.consume(1000, 0.3)
            if msgs:
                idle_since = time.monotonic()
            out.extend(m.value().decode() for m in msgs if m.error() is None)
        return out
    finally:
        c.close()


def end_offsets(bootstrap, topic):
    """(log end, last stable offset) of partition 0, as ListOffsets answers them."""
    ends = []
    for isolation in ("read_uncommitted", "read_committed"):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                      "isolation.level": isolation})
        try:
            ends.append(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                                cached=False)[1])
        finally:
            c.close()
    return tuple(ends)


def transaction(p, topic, values, commit):
    p.begin_transaction()
    for v in values:
        p.produce(topic, value=v.encode(), partition=0)
    p.flush(30)  # in the log before the marker (an abort purges unsent records)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)


def test_open_transaction_survives_kill9_after_many_rolls(broker_factory):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique_topic("eos-crash"), 1,
                         config={"segment.bytes": str(SEGMENT_BYTES)})

    opener = txn_producer(b.bootstrap, unique_topic("tid-open"),
                          **{"transaction.timeout.ms": OPEN_TIMEOUT_MS})
    opener.begin_transaction()
    open_values = [f"open-{i}" for i in range(5)]
    for v in open_values:
        opener.produce(topic, value=v.encode(), partition=0)
    opener.flush(30)
    started = time.monotonic()

    committer = txn_producer(b.bootstrap, unique_topic("tid-commit"))
    aborter = txn_producer(b.bootstrap, unique_topic("tid-abort"))
    plain = make_producer(b.bootstrap, **{"enable.idempotence": True})
    committed, aborted, plain_values = [], [], []
    for round_ in range(6):
        values = [f"plain-{round_}-{i}-{'x' * 40}" for i in range(40)]
        produce_all(plain, [{"topic": topic, "partition": 0, "value": v.encode()} for v in values])
        plain_values += values
        values = [f"commit-{round_}-{i}" for i in range(20)]
        transaction(committer, topic, values, commit=True)
        committed += values
        values = [f"abort-{round_}-{i}" for i in range(20)]
        transaction(aborter, topic, values, commit=False)
        aborted += values

    segments = list(b.partition_dir(topic).glob("*.log"))
    assert len(segments) > 8, f"expected many rolls, got {len(segments)} segments"
    assert time.monotonic() - started < OPEN_TIMEOUT_MS / 1000 - 3, "too slow: the test is void"
    log_end, lso = end_offsets(b.bootstrap, topic)
    assert lso == 0, f"the open transaction holds the LSO at its first offset, got {lso}"

    b.kill9()
    b.start()

    # Before the transaction ends: it is still open, nothing of it (or after it) is visible.
    log_end_after, lso_after = end_offsets(b.bootstrap, topic)
    assert log_end_after >= log_end
    if log_end_after == log_end:  # no abort marker yet
        assert lso_after == 0, f"LSO after the restart: {lso_after}"
        assert consume(b.bootstrap, topic, "read_committed", timeout=5) == []

    # Its timeout aborts it: the LSO reaches the log end (past the abort marker).
    deadline = time.monotonic() + OPEN_TIMEOUT_MS / 1000 + 30
    while time.monotonic() < deadline:
        end, stable = end_offsets(b.bootstrap, topic)
        if stable == end and end > log_end:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the open transaction was never aborted: {end_offsets(b.bootstrap, topic)}")

    seen = consume(b.bootstrap, topic, "read_committed")
    assert not [v for v in seen if v.startswith("open-")], "the aborted open transaction is visible"
    assert not [v for v in seen if v.startswith("abort-")], "an aborted transaction is visible"
    assert sorted(seen) == sorted(plain_values + committed)
    everything = consume(b.bootstrap, topic, "read_uncommitted")
    assert sorted(everything) == sorted(open_values + plain_values + committed + aborted)
