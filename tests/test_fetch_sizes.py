"""KIP-74 fetch sizing with real clients: an answer exceeds fetch.max.bytes only by its first
record batch, so a consumer whose receive buffer is sized from fetch.max.bytes (librdkafka's
receive.message.max.bytes pairing) always makes progress."""

from conftest import consume_partitions, create_topic, make_producer, produce_all, unique_topic

RECORD = 900 * 1024
PARTITIONS = 3
PER_PARTITION = 2


def test_large_records_with_librdkafkas_strict_receive_limit(broker):
    topic = create_topic(broker.bootstrap, unique_topic("big"), PARTITIONS,
                         config={"max.message.bytes": 2_000_000})
    producer = make_producer(broker.bootstrap, **{"linger.ms": 0})
    messages = [{"topic": topic, "partition": p, "value": bytes([65 + p]) * RECORD,
                 "key": f"{p}-{i}".encode()}
                for i in range(PER_PARTITION) for p in range(PARTITIONS)]
    produce_all(producer, messages)

    # Two of these batches in one answer (1.84 MB) are more than the consumer accepts: it
    # drops the connection and asks again, forever, unless the broker keeps to the limit.
    got = consume_partitions(broker.bootstrap, topic, range(PARTITIONS), timeout=30,
                             **{"fetch.max.bytes": 1_000_000,
                                "receive.message.max.bytes": 1_000_512})
    for p in range(PARTITIONS):
        assert [m.key() for m in got[p]] == [f"{p}-{i}".encode() for i in range(PER_PARTITION)]
        assert all(m.value() == bytes([65 + p]) * RECORD for m in got[p])
