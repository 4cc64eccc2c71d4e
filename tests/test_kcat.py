"""kcat (librdkafka 2.0.2, an older client) against the broker."""

import json
import shutil
import subprocess

import pytest

from conftest import consume_partitions, create_topic, make_producer, produce_all, unique_topic

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")

PARTITIONS = 6
FMT = "%k|%s|%p|%o|%h\n"


def kcat(*args, input=None, timeout=60):
    p = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    assert p.returncode == 0, (f"kcat {' '.join(args)} exited {p.returncode}\n"
                               f"stderr:\n{p.stderr.decode(errors='replace')}")
    return p.stdout.decode()


def kcat_produce(bootstrap, topic, partition, lines, headers=(), codec=None):
    args = ["-P", "-b", bootstrap, "-t", topic, "-p", str(partition), "-K:",
            "-X", "acks=all"]
    for h in headers:
        args += ["-H", h]
    if codec:
        args += ["-z", codec]
    kcat(*args, input=("\n".join(lines) + "\n").encode())


def kcat_consume(bootstrap, topic):
    """All partitions from the beginning to the end, as a sorted list of lines."""
    out = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", FMT)
    return sorted(line for line in out.split("\n") if line)


def expected_lines(per_partition):
    """per_partition: {partition: [(key, value, headers_str)]} -> sorted kcat lines."""
    out = []
    for p, recs in per_partition.items():
        for off, (k, v, h) in enumerate(recs):
            out.append(f"{k}|{v}|{p}|{off}|{h}")
    return sorted(out)


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_and_consume(broker, codec):
    topic = create_topic(broker.bootstrap, unique_topic(f"kcat-{codec or 'none'}"), PARTITIONS)
    per_partition = {}
    for p in range(PARTITIONS):
        # 100,000 records over partitions 0-4; partition 5 gets none: kcat -e must still
        # terminate on an empty partition.
        n = 0 if p == 5 else 16_000 + 2_000 * p
        recs = [(f"k{p}-{i}", f"value {p} {i} " + "x" * (i % 40), "src=kcat,part=p" + str(p))
                for i in range(n)]
        if recs:
            kcat_produce(broker.bootstrap, topic, p, [f"{k}:{v}" for k, v, _ in recs],
                         headers=["src=kcat", f"part=p{p}"], codec=codec)
        per_partition[p] = recs
    assert kcat_consume(broker.bootstrap, topic) == expected_lines(per_partition)

    # And confluent-kafka (librdkafka 2.x current) reads the same bytes.
    got = consume_partitions(broker.bootstrap, topic, range(PARTITIONS))
    for p, recs in per_partition.items():
        assert [(m.offset(), m.key().decode(), m.value().decode(), m.headers()) for m in got[p]] \
            == [(i, k, v, [("src", b"kcat"), ("part", f"p{p}".encode())])
                for i, (k, v, _) in enumerate(recs)]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_reads_confluent_kafka_records(broker, codec):
    topic = create_topic(broker.bootstrap, unique_topic(f"ck2kcat-{codec}"), PARTITIONS)
    producer = make_producer(broker.bootstrap, **{"compression.type": codec})
    msgs = [{"topic": topic, "partition": i % PARTITIONS, "key": f"key{i}".encode(),
             "value": f"value-{i}-".encode() + b"abc" * (i % 50),
             "headers": [("n", str(i).encode()), ("codec", codec.encode())]}
            for i in range(100_000)]
    reports = produce_all(producer, msgs)
    expected = sorted(
        f"{m['key'].decode()}|{m['value'].decode()}|{p}|{off}|n={i},codec={codec}"
        for i, (m, (p, off)) in enumerate(zip(msgs, reports)))
    assert kcat_consume(broker.bootstrap, topic) == expected


def test_kcat_metadata_lists_topic(broker):
    topic = create_topic(broker.bootstrap, unique_topic("kcat-md"), PARTITIONS)
    md = json.loads(kcat("-L", "-b", broker.bootstrap, "-t", topic, "-J"))
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, md
    t = topics[topic]
    assert "error" not in t or not t["error"], t
    assert sorted(p["partition"] for p in t["partitions"]) == list(range(PARTITIONS))
    broker_ids = {b["id"] for b in md["brokers"]}
    # Every broker of the bootstrap list (one, or a cluster's under WEIR_CLUSTER).
    assert sorted(b["name"] for b in md["brokers"]) == sorted(broker.bootstrap.split(",")), \
        md["brokers"]
    for p in t["partitions"]:
        assert p["leader"] in broker_ids, p

    # The plain-text listing (what people read) says the same.
    text = kcat("-L", "-b", broker.bootstrap)
    assert f'topic "{topic}" with {PARTITIONS} partitions:' in text, text
