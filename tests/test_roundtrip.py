"""confluent-kafka moves 100,000 records through the broker and gets every byte back."""

import hashlib
import time

import pytest

from conftest import consume_partitions, create_topic, make_producer, produce_all, unique_topic

N = 100_000
PARTITIONS = 6


def record(i: int, base_ts: int) -> dict:
    """Deterministic, varied record number i: sizes 0..~300 bytes, binary values, some null
    keys and values, 0..3 headers including a repeated key and a null header value."""
    digest = hashlib.blake2b(i.to_bytes(8, "big"), digest_size=64).digest()
    size = digest[0] + (digest[1] % 64)
    value = None if i % 997 == 0 else (digest * 5)[:size]
    key = None if i % 101 == 0 else f"key-{i:06d}".encode()
    headers = [("id", str(i).encode())]  # identifies records whose key is null
    if i % 3 == 0:
        headers.append(("bin", digest[:16]))
    if i % 5 == 0:
        headers.append(("dup", b"first"))
        headers.append(("dup", b"second"))
    if i % 7 == 0:
        headers.append(("empty", b""))
    if i % 11 == 0:
        headers.append(("null", None))
    return {
        "key": key,
        "value": value,
        "headers": headers,
        "timestamp": base_ts + (i * 7) % 100_000,  # not monotonic within a partition
        "partition": i % PARTITIONS,
    }


def normalize_headers(hs):
    return [(k, None if v is None else bytes(v)) for k, v in (hs or [])]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_roundtrip_100k(broker, codec):
    topic = create_topic(broker.bootstrap, unique_topic(f"rt-{codec}"), PARTITIONS)
    base_ts = int(time.time() * 1000) - 3_600_000
    records = [record(i, base_ts) for i in range(N)]

    producer = make_producer(broker.bootstrap, **{"compression.type": codec,
                                                  "enable.idempotence": False,
                                                  "batch.num.messages": 5000,
                                                  "queue.buffering.max.messages": 200_000})
    reports = produce_all(producer, ({"topic": topic, **r} for r in records), timeout=60)

    # The broker assigned offsets 0..n-1 per partition, in the order each partition was written.
    by_partition = {p: [] for p in range(PARTITIONS)}
    for i, (p, off) in enumerate(reports):
        assert p == records[i]["partition"], f"record {i} acked on partition {p}"
        by_partition[p].append((off, i))
    for p, acks in by_partition.items():
        offsets = sorted(o for o, _ in acks)
        assert offsets == list(range(len(acks))), f"partition {p}: acked offsets not 0..n-1"

    got = consume_partitions(broker.bootstrap, topic, range(PARTITIONS), timeout=60)

    expected_at = {(p, off): i for i, (p, off) in enumerate(reports)}
    seen = 0
    for p in range(PARTITIONS):
        msgs = got[p]
        assert [m.offset() for m in msgs] == list(range(len(by_partition[p]))), \
            f"partition {p}: consumed offsets are not exactly the acked ones"
        for m in msgs:
            i = expected_at[(p, m.offset())]
            r = records[i]
            assert m.topic() == topic
            assert m.key() == r["key"], f"record {i} key"
            assert m.value() == r["value"], f"record {i} value"
            assert normalize_headers(m.headers()) == r["headers"], f"record {i} headers"
            ts_type, ts = m.timestamp()
            assert (ts_type, ts) == (1, r["timestamp"]), f"record {i}: timestamp {(ts_type, ts)}"
            seen += 1
    assert seen == N
