"""Long polls with confluent-kafka: a consumer parked with a long fetch.wait.max.ms gets a record
as soon as it is appended to its partition, and a read_committed consumer as soon as the
commit marker moves the last stable offset (not at the end of its wait)."""

import time

from confluent_kafka import OFFSET_END, Producer, TopicPartition

from conftest import create_topic, make_consumer, make_producer, unique_topic

WAIT_MS = 20_000
# Far below WAIT_MS: an answer this fast was woken by the append, not by the timeout.
PROMPT_S = 3.0


def parked_consumer(bootstrap, topic, partition, **conf):
    c = make_consumer(bootstrap, **{"fetch.wait.max.ms": WAIT_MS, "fetch.min.bytes": 1,
                                    "auto.offset.reset": "latest", **conf})
    c.assign([TopicPartition(topic, partition, OFFSET_END)])
    # Nothing to read yet: the fetch reaches the broker and parks.
    for _ in range(3):
        assert c.poll(0.5) is None
    return c


def wait_for_record(c, deadline_s):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        m = c.poll(0.2)
        if m is not None:
            assert m.error() is None, m.error()
            return m, time.monotonic() - start
    raise AssertionError(f"no record within {deadline_s}s")


def test_a_parked_consumer_wakes_for_its_partition(broker):
    topic = create_topic(broker.bootstrap, unique_topic("poll"), 2)
    c = parked_consumer(broker.bootstrap, topic, 0)
    try:
        p = make_producer(broker.bootstrap, **{"linger.ms": 0})
        # Appends to the other partition are not for this consumer.
        for i in range(50):
            p.produce(topic, value=b"other", partition=1)
        p.flush(10)
        assert c.poll(1.0) is None
        p.produce(topic, value=b"mine", partition=0)
        p.flush(10)
        m, took = wait_for_record(c, WAIT_MS / 1000)
        assert (m.partition(), m.value()) == (0, b"mine")
        assert took < PROMPT_S, f"answered after {took:.1f}s: woken by the timeout"
    finally:
        c.close()


def test_a_parked_read_committed_consumer_wakes_on_the_commit(broker):
    topic = create_topic(broker.bootstrap, unique_topic("pollrc"), 1)
    c = parked_consumer(broker.bootstrap, topic, 0, **{"isolation.level": "read_committed"})
    try:
        p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique_topic("tx"),
                      "linger.ms": 0})
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(topic, value=b"in-txn", partition=0)
        p.flush(10)
        # The data is appended but above the last stable offset: nothing yet.
        assert c.poll(1.5) is None
        p.commit_transaction(30)
        committed_at = time.monotonic()
        m, _ = wait_for_record(c, WAIT_MS / 1000)
        took = time.monotonic() - committed_at
        assert m.value() == b"in-txn"
        assert took < PROMPT_S, f"answered {took:.1f}s after the commit: woken by the timeout"
    finally:
        c.close()
