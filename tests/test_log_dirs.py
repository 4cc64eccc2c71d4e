"""DescribeLogDirs: each partition's size on disk, through kafka-python's admin client and
`weir topic describe`, checked against the segment files in the data directory."""

import os
import re

import pytest
from kafka import KafkaAdminClient

from conftest import create_topic, make_producer, produce_all, run_weir, unique_topic


def segment_bytes(broker, topic, partition):
    d = broker.partition_dir(topic, partition)
    return sum(os.path.getsize(d / f) for f in os.listdir(d) if f.endswith(".log"))


@pytest.fixture
def topic_with_data(broker):
    topic = unique_topic("logdirs")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = make_producer(broker.bootstrap, acks="all")
    produce_all(p, [dict(topic=topic, partition=0, key=b"k", value=b"v" * 1000) for _ in range(50)])
    return topic


def test_kafka_python_describe_log_dirs(broker, topic_with_data):
    topic = topic_with_data
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        every = a.describe_log_dirs()
        some = a.describe_log_dirs({topic: [1]})
    finally:
        a.close()
    (dirs,) = [r["log_dirs"] for r in every]
    (d,) = dirs
    assert d["error_code"] == 0
    assert os.path.samefile(d["log_dir"], broker.data_dir)
    sizes = {}
    for t in d["topics"]:
        for p in t["partitions"]:
            assert p["offset_lag"] == 0 and not p["is_future_key"]
            sizes[(t["name"], p["partition_index"])] = p["partition_size"]
    assert sizes[(topic, 0)] == segment_bytes(broker, topic, 0) > 50_000
    assert sizes[(topic, 1)] == segment_bytes(broker, topic, 1) == 0
    # kafka-python speaks v4, which carries the disk's size.
    st = os.statvfs(broker.data_dir)
    assert d["total_bytes"] == st.f_blocks * st.f_frsize
    assert 0 < d["usable_bytes"] <= d["total_bytes"]

    (dirs,) = [r["log_dirs"] for r in some]
    ((t,),) = [d["topics"] for d in dirs]
    assert t["name"] == topic
    assert [p["partition_index"] for p in t["partitions"]] == [1]


def test_cli_topic_describe_shows_sizes(broker, topic_with_data):
    topic = topic_with_data
    out = run_weir("topic", "describe", topic, "-b", broker.bootstrap).stdout
    header = next(line for line in out.splitlines() if line.split()[:1] == ["PARTITION"])
    assert header.split()[-1] == "SIZE", out
    rows = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) == 5 and re.fullmatch(r"\d+", cols[0]):
            rows[int(cols[0])] = int(cols[4])
    assert rows == {0: segment_bytes(broker, topic, 0), 1: 0}, out
