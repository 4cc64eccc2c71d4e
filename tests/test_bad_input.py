"""Malformed and hostile input on the wire: the broker rejects it and keeps serving."""

import os
import socket
import struct

import pytest

import kwire
from conftest import (consume_partitions, create_topic, make_producer, produce_all,
                      topic_partition_counts, unique_topic, wait_for_topic, watermarks)

UNSUPPORTED_VERSION = 35
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17


def assert_healthy(broker):
    """The process lives, answers ApiVersions on a new connection, and a real client works."""
    assert broker.alive(), f"broker died\n{broker.log_tail()}"
    with kwire.Conn(broker.bootstrap) as c:
        corr, err, apis = kwire.api_versions(c, version=0, correlation_id=4242)
        assert (corr, err) == (4242, 0)
        assert kwire.API_PRODUCE in apis and kwire.API_VERSIONS in apis
    topic = create_topic(broker.bootstrap, unique_topic("healthy"), 2)
    msgs = [{"topic": topic, "partition": i % 2, "key": b"k%d" % i, "value": b"v%d" % i}
            for i in range(100)]
    produce_all(make_producer(broker.bootstrap), msgs)
    got = consume_partitions(broker.bootstrap, topic, [0, 1])
    assert sorted((m.key(), m.value()) for p in got for m in got[p]) == \
        sorted((m["key"], m["value"]) for m in msgs)
    assert broker.alive()


def test_garbage_and_bad_frames_close_the_connection(broker):
    cases = {
        # An HTTP request: its first 4 bytes read as a ~1.2 GB length.
        "http": b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n",
        "negative length": struct.pack(">i", -16) + os.urandom(16),
        "length 2^31-1": struct.pack(">i", 2**31 - 1) + os.urandom(64),
        # A well-sized frame too short to hold a request header.
        "runt frame": struct.pack(">i", 3) + b"\x00\x12\x00",
        # Random bytes with a plausible length: api key/version are nonsense.
        "random frame": struct.pack(">i", 40) + b"\x7f\x7f\x7f\x7f" + os.urandom(36),
    }
    for name, data in cases.items():
        with kwire.Conn(broker.bootstrap) as c:
            c.send_raw(data)
            outcome = c.wait_closed(timeout=5)
            if name == "random frame":
                # Either answer is acceptable as long as the connection is not left hanging.
                assert outcome in ("closed", "response"), f"{name}: connection left {outcome}"
            else:
                assert outcome == "closed", f"{name}: expected the broker to close, got {outcome}"
        assert broker.alive(), f"broker died after {name}\n{broker.log_tail()}"
    assert_healthy(broker)


def test_truncated_frames_then_client_closes(broker):
    for n in range(20):
        with kwire.Conn(broker.bootstrap) as c:
            header = kwire.request_header_v1(kwire.API_VERSIONS, 0, n)
            # Announce 100 bytes, send fewer, vanish.
            c.send_raw(struct.pack(">i", 100) + header[: n % len(header)])
        s = socket.create_connection(("127.0.0.1", broker.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.sendall(b"\x00\x00\x00")
        s.close()
    assert_healthy(broker)


def test_unknown_api_key(broker):
    with kwire.Conn(broker.bootstrap) as c:
        c.send_raw(kwire.frame(kwire.request_header_v1(999, 0, 77) + b"\x00" * 8))
        outcome = c.wait_closed(timeout=5)
        assert outcome in ("closed", "response"), f"unknown api key: connection left {outcome}"
    assert_healthy(broker)


def test_api_versions_unsupported_version(broker):
    with kwire.Conn(broker.bootstrap) as c:
        corr, err, apis = kwire.api_versions(c, version=99, correlation_id=31337)
        assert corr == 31337
        assert err == UNSUPPORTED_VERSION
        # The answer still lists what the broker supports, so the client can retry.
        assert kwire.API_VERSIONS in apis, apis
        lo, hi = apis[kwire.API_VERSIONS]
        assert lo == 0 and hi >= 3, apis[kwire.API_VERSIONS]
        assert kwire.API_PRODUCE in apis and kwire.API_METADATA in apis
        # The connection is still usable.
        corr, err, apis2 = kwire.api_versions(c, version=0, correlation_id=31338)
        assert (corr, err, apis2) == (31338, 0, apis)
    assert_healthy(broker)


def test_api_versions_v3_parses(broker):
    """ApiVersions v3 (flexible) answers with a v0 header and a parseable body start."""
    with kwire.Conn(broker.bootstrap) as c:
        r = c.request(kwire.request_header_v2(kwire.API_VERSIONS, 3, 5),
                      kwire.compact_string("weir-tests") + kwire.compact_string("1") + b"\x00")
        assert r.i32() == 5
        assert r.i16() == 0
        n = r.uvarint() - 1
        keys = {}
        for _ in range(n):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            assert r.uvarint() == 0  # tagged fields
            keys[key] = (lo, hi)
        assert keys[kwire.API_VERSIONS][1] >= 3


@pytest.mark.parametrize("bad", ["bad name!", "..", "a" * 300])
def test_produce_to_invalid_topic_name(broker, bad):
    batch, _ = kwire.record_batch([(b"k", b"v", [])])
    with kwire.Conn(broker.bootstrap) as c:
        v = kwire.pick_produce_version(c)
        err, _ = kwire.produce(c, v, bad, 0, batch)
        assert err in (INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION), err
    assert bad not in topic_partition_counts(broker.bootstrap)
    assert_healthy(broker)


def test_produce_with_corrupt_crc(broker):
    topic = create_topic(broker.bootstrap, unique_topic("crc"), 1)
    with kwire.Conn(broker.bootstrap) as c:
        v = kwire.pick_produce_version(c)
        # The hand-built batch is right when its CRC is: proves the encoder, not just the broker.
        good, _ = kwire.record_batch([(b"key", b"good", [("h", b"1")])])
        assert kwire.produce(c, v, topic, 0, good) == (0, 0)

        bad, _ = kwire.record_batch([(b"key", b"evil", [])], corrupt_crc=True)
        err, _ = kwire.produce(c, v, topic, 0, bad, correlation_id=12)
        assert err == CORRUPT_MESSAGE

        # A flipped byte in the records after a correct CRC is the same corruption.
        good2, _ = kwire.record_batch([(b"key", b"flip", [])])
        flipped = bytearray(good2)
        flipped[-3] ^= 0xFF
        err, _ = kwire.produce(c, v, topic, 0, bytes(flipped), correlation_id=13)
        assert err == CORRUPT_MESSAGE

        # A batch that claims more bytes than it has.
        err, _ = kwire.produce(c, v, topic, 0, good2[:-5], correlation_id=14)
        assert err in (CORRUPT_MESSAGE, 87), err  # 87 INVALID_RECORD

        assert kwire.produce(c, v, topic, 0, good2, correlation_id=15) == (0, 1)

    assert watermarks(broker.bootstrap, topic, 0) == (0, 2)
    got = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert [(m.offset(), m.key(), m.value(), m.headers()) for m in got] == [
        (0, b"key", b"good", [("h", b"1")]), (1, b"key", b"flip", None)]
    assert_healthy(broker)


def test_produce_to_missing_topic_without_auto_create(broker_factory):
    b = broker_factory(settings={"auto.create.topics.enable": "false", "num.partitions": 5})
    topic = unique_topic("missing")
    batch, _ = kwire.record_batch([(b"k", b"v", [])])
    with kwire.Conn(b.bootstrap) as c:
        v = kwire.pick_produce_version(c)
        err, _ = kwire.produce(c, v, topic, 0, batch)
        assert err == UNKNOWN_TOPIC_OR_PARTITION
        # Metadata for it (which may auto-create) says it does not exist either.
        md = kwire.metadata_v1(c, [topic])
        assert md == {topic: (UNKNOWN_TOPIC_OR_PARTITION, 0)}, md
    assert topic not in topic_partition_counts(b.bootstrap)


def test_auto_create_uses_num_partitions(broker_factory):
    b = broker_factory(settings={"auto.create.topics.enable": "true", "num.partitions": 5})
    topic = unique_topic("auto")
    # librdkafka asks for the topic's metadata, which creates it; then the record lands.
    reports = produce_all(make_producer(b.bootstrap), [{"topic": topic, "value": b"hello",
                                                        "partition": 4}], timeout=30)
    assert reports == [(4, 0)]
    wait_for_topic(b.bootstrap, topic, 5)
    assert topic_partition_counts(b.bootstrap)[topic] == 5
    got = consume_partitions(b.bootstrap, topic, range(5))
    assert [(p, m.offset(), m.value()) for p in range(5) for m in got[p]] == [(4, 0, b"hello")]
