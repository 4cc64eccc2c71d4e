"""Graceful shutdown: SIGTERM finishes what was accepted, flushes, and leaves the clean-shutdown
marker so the next start skips the recovery scan; kill -9 leaves none, so the next start scans."""

import time

from confluent_kafka import Consumer, TopicPartition

from conftest import consume_partitions, create_topic, make_producer, produce_all, unique_topic


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
