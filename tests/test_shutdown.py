"""Graceful shutdown: SIGTERM finishes what was accepted, flushes, and leaves the clean-shutdown
marker so the next start skips the recovery scan; kill -9 leaves none, so the next start scans."""

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import (Broker, BrokerDied, consume_partitions, create_topic, make_producer,
                      produce_all, topic_partition_counts, unique_topic)


def starts_in_log(broker):
    return [line for line in broker.log_path.read_text().splitlines() if "opening logs" in line]


def test_sigterm_is_clean_and_kill9_is_not(broker):
    topic = create_topic(broker.bootstrap, unique_topic("stop"), 2)
    produce_all(make_producer(broker.bootstrap),
                [{"topic": topic, "value": str(i).encode(), "partition": i % 2} for i in range(2000)])
    assert broker.stop() == 0
    marker = broker.data_dir / "meta" / "clean-shutdown"
    assert marker.exists(), "a clean stop leaves the marker"

    broker.start()
    assert "clean=true" in starts_in_log(broker)[-1]
    assert not marker.exists(), "the marker is consumed at start"
    logs = consume_partitions(broker.bootstrap, topic, [0, 1])
    assert [int(m.value()) for m in logs[0]] == list(range(0, 2000, 2))

    broker.kill9()
    broker.start()
    assert "clean=false" in starts_in_log(broker)[-1]


def test_sigterm_answers_a_waiting_long_poll(broker):
    """A fetch long-polling when SIGTERM arrives is answered, and the broker exits promptly."""
    topic = create_topic(broker.bootstrap, unique_topic("poll"), 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 5000})
    c.assign([TopicPartition(topic, 0, 0)])
    c.poll(1.0)  # now a fetch is parked on the empty partition
    t0 = time.monotonic()
    code = broker.stop(timeout=15)
    took = time.monotonic() - t0
    c.close()
    assert code == 0
    assert took < 12, f"shutdown took {took:.1f}s"


def test_second_broker_on_the_same_data_dir_is_refused(broker_factory, tmp_path):
    first = broker_factory(name="first")
    second = Broker(first.data_dir, tmp_path, name="second")
    with pytest.raises(BrokerDied):
        second.start(timeout=10)
    assert second.proc.returncode != 0
    log = second.log_path.read_text()
    lines = [line for line in log.splitlines() if "in use by another broker" in line]
    assert len(lines) == 1, log
    assert f"pid {first.proc.pid}" in lines[0], lines[0]
    assert ".lock" in lines[0], lines[0]
    # The first broker still serves, and nothing of the second was written.
    assert first.alive()
    topic = unique_topic("locked")
    create_topic(first.bootstrap, topic)
    # kill -9 releases the lock: a restart on the same directory starts.
    first.kill9()
    first.start()
    assert topic in topic_partition_counts(first.bootstrap)


def test_listen_error_is_one_clear_line(broker_factory, tmp_path):
    first = broker_factory(name="first")
    other = Broker(tmp_path / "other-data", tmp_path, port=first.port, name="other")
    # The port answers (the first broker holds it), so start() returns at once; the second
    # process must exit on its own.
    other.start(timeout=10)
    assert other.proc.wait(10) != 0
    other.kill9()
    log = other.log_path.read_text()
    (line,) = [line for line in log.splitlines() if line.startswith("weir: ")]
    assert f"cannot listen on 127.0.0.1:{first.port}" in line, line
    assert line.count("Address already in use") == 1, line
