"""Admin edges real client test suites hit: replica assignments on CreatePartitions, broker
configs (described with types, sources, synonyms; altered dynamically and persisted),
deprecated topic keys, and keyless records on compacted topics."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, NewPartitions, ResourceType
from confluent_kafka.admin import ConfigResource as CKConfigResource
from confluent_kafka.admin import NewTopic as CKNewTopic

from conftest import (admin_client, create_topic, make_producer, topic_partition_counts,
                      unique_topic, watermarks)


def ck_error(fut):
    with pytest.raises(KafkaException) as ei:
        fut.result(15)
    return ei.value.args[0]


def test_create_partitions_replica_assignment_must_match_the_added_count(broker):
    a = admin_client(broker.bootstrap)
    topic = unique_topic("grow")
    create_topic(broker.bootstrap, topic, partitions=2)
    # 2 → 4 adds two partitions; an assignment of one or three is refused, like Kafka.
    for listed in (1, 3):
        fs = a.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0]] * listed)])
        err = ck_error(fs[topic])
        assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
        assert "adds 2" in err.str() and f"lists {listed}" in err.str(), err.str()
    fs = a.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0], [5]])])
    err = ck_error(fs[topic])
    assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
    assert "broker 5" in err.str(), err.str()
    assert topic_partition_counts(broker.bootstrap)[topic] == 2
    fs = a.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0], [0]])])
    assert fs[topic].result(15) is None
    deadline = time.monotonic() + 10
    while topic_partition_counts(broker.bootstrap)[topic] != 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic_partition_counts(broker.bootstrap)[topic] == 4


def test_deprecated_topic_keys_are_accepted_with_a_warning(broker):
    a = admin_client(broker.bootstrap)
    topic = unique_topic("old")
    fs = a.create_topics([CKNewTopic(topic, num_partitions=1, replication_factor=1,
                                     config={"message.format.version": "0.10.2"})])
    assert fs[topic].result(15) is None
    res = a.describe_configs([CKConfigResource(ResourceType.TOPIC, topic)])
    cfg = next(iter(res.values())).result(15)
    assert cfg["message.format.version"].value == "0.10.2"
    assert cfg["message.downconversion.enable"].value == "true"
    fs = a.incremental_alter_configs([CKConfigResource(
        ResourceType.TOPIC, topic,
        incremental_configs=[ConfigEntry("message.downconversion.enable", "false",
                                         incremental_operation=AlterConfigOpType.SET)])])
    assert next(iter(fs.values())).result(15) is None
    # A deprecated key still has its value checked.
    fs = a.incremental_alter_configs([CKConfigResource(
        ResourceType.TOPIC, topic,
        incremental_configs=[ConfigEntry("message.format.version", "banana",
                                         incremental_operation=AlterConfigOpType.SET)])])
    assert ck_error(next(iter(fs.values()))).code() == KafkaError.INVALID_CONFIG
    log = broker.log_path.read_text()
    assert "message.format.version is deprecated and ignored" in log, log[-3000:]
    assert "message.downconversion.enable is deprecated and ignored" in log, log[-3000:]


@pytest.mark.parametrize("compression", ["none", "zstd", "gzip", "lz4", "snappy"])
def test_keyless_record_on_a_compacted_topic_is_invalid_record(broker, compression):
    topic = unique_topic("compact")
    create_topic(broker.bootstrap, topic, partitions=2, config={"cleanup.policy": "compact"})
    p = make_producer(broker.bootstrap, **{"compression.type": compression, "linger.ms": 50,
                                            "enable.idempotence": False})
    results = {}

    def cb(name):
        def done(err, msg):
            results[name] = err if err is not None else msg.offset()
        return done

    # One request carries both partitions: the keyless batch fails, the keyed one lands.
    p.produce(topic, value=b"keyed", key=b"k", partition=1, on_delivery=cb("keyed"))
    p.produce(topic, value=b"x" * 200, key=b"k", partition=0, on_delivery=cb("batch-keyed"))
    p.produce(topic, value=b"x" * 200, partition=0, on_delivery=cb("keyless"))
    assert p.flush(15) == 0
    assert results["keyed"] == 0, results
    for name in ("keyless", "batch-keyed"):
        err = results[name]
        assert isinstance(err, KafkaError), results
        assert err.code() == KafkaError.INVALID_RECORD, err
    assert watermarks(broker.bootstrap, topic, 0) == (0, 0)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 1)


def test_keyless_record_refused_for_kafka_python(broker):
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError
    topic = unique_topic("compactkp")
    create_topic(broker.bootstrap, topic, partitions=1,
                 config={"cleanup.policy": "delete,compact"})
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0, compression_type="gzip")
    try:
        with pytest.raises(InvalidRecordError):
            p.send(topic, value=b"no key", partition=0).get(timeout=15)
        md = p.send(topic, value=b"keyed", key=b"k", partition=0).get(timeout=15)
        assert md.offset == 0
    finally:
        p.close()
