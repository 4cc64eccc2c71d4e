"""Client-visible protocol behaviour beyond the plain round trip: timestamps lookup, size
limits, tiny fetch sizes, acks levels, unknown partitions."""

import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from conftest import (consume_partitions, create_topic, make_consumer, make_producer, produce_all,
                      unique_topic, watermarks)


def test_offsets_for_times(broker):
    topic = create_topic(broker.bootstrap, unique_topic("oft"), 1)
    base = 1_700_000_000_000
    produce_all(make_producer(broker.bootstrap), [
        {"topic": topic, "partition": 0, "value": f"r{i}".encode(), "timestamp": base + i * 1000}
        for i in range(10)])
    c = make_consumer(broker.bootstrap)
    try:
        q = [TopicPartition(topic, 0, ts) for ts in (base - 1, base, base + 6500, base + 9000,
                                                      base + 99_000)]
        got = [c.offsets_for_times([tp], timeout=10)[0].offset for tp in q]
    finally:
        c.close()
    # Earliest offset whose timestamp >= the query; past the last record: -1 (end).
    assert got == [0, 0, 7, 9, -1]


def test_record_larger_than_max_message_bytes_is_rejected(broker):
    topic = create_topic(broker.bootstrap, unique_topic("big"), 1,
                         config={"max.message.bytes": "2000"})
    p = make_producer(broker.bootstrap, **{"linger.ms": 0})
    errors = []
    p.produce(topic, value=b"x" * 5000, partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]
    # Nothing was appended; small records still go in at offset 0.
    assert watermarks(broker.bootstrap, topic, 0) == (0, 0)
    assert produce_all(p, [{"topic": topic, "partition": 0, "value": b"small"}]) == [(0, 0)]


def test_tiny_fetch_sizes_still_make_progress(broker):
    """A fetch limit smaller than one batch still returns that batch (KIP-74)."""
    topic = create_topic(broker.bootstrap, unique_topic("tiny"), 2)
    msgs = [{"topic": topic, "partition": i % 2, "value": bytes([i % 256]) * 3000}
            for i in range(200)]
    produce_all(make_producer(broker.bootstrap, **{"compression.type": "none"}), msgs)
    got = consume_partitions(broker.bootstrap, topic, [0, 1], timeout=30,
                             **{"message.max.bytes": 1000, "fetch.max.bytes": 1024,
                                "max.partition.fetch.bytes": 1,
                                "fetch.min.bytes": 1})
    for p in range(2):
        assert [m.value() for m in got[p]] == [m["value"] for m in msgs if m["partition"] == p]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_levels(broker, acks):
    topic = create_topic(broker.bootstrap, unique_topic(f"acks{acks}"), 1)
    p = make_producer(broker.bootstrap, acks=acks)
    for i in range(500):
        p.produce(topic, value=f"{i}".encode(), partition=0)
    assert p.flush(15) == 0
    if acks == "0":
        # Nothing is acknowledged, but everything must arrive (give the broker a moment).
        deadline = time.monotonic() + 10
        while watermarks(broker.bootstrap, topic, 0)[1] < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
    got = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert [(m.offset(), m.value()) for m in got] == [(i, f"{i}".encode()) for i in range(500)]


def test_produce_to_nonexistent_partition_fails(broker):
    topic = create_topic(broker.bootstrap, unique_topic("nopart"), 2)
    p = make_producer(broker.bootstrap, **{"message.timeout.ms": 3000})
    errors = []
    p.produce(topic, value=b"x", partition=7, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART,
                                KafkaError._MSG_TIMED_OUT), errors[0]


def test_fetch_out_of_range_offset(broker):
    topic = create_topic(broker.bootstrap, unique_topic("oor"), 1)
    produce_all(make_producer(broker.bootstrap), [{"topic": topic, "partition": 0, "value": b"a"}])
    c = make_consumer(broker.bootstrap)  # auto.offset.reset=error
    try:
        c.assign([TopicPartition(topic, 0, 50)])
        deadline = time.monotonic() + 15
        err = None
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None:
                err = m.error()
            elif m is not None:
                raise AssertionError(f"read {m.offset()} past the end")
    finally:
        c.close()
    assert err is not None, "no error for a fetch at offset 50 of a 1-record log"
    assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
    assert "Offset out of range" in err.str() or "OFFSET_OUT_OF_RANGE" in err.str().upper(), err
