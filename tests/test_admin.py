"""Topic administration through kafka-python and confluent-kafka, plus a kafka-python
producer/consumer round trip."""

import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import ConfigResource as CKConfigResource
from confluent_kafka.admin import NewTopic as CKNewTopic
from confluent_kafka.admin import ResourceType
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import InvalidTopicError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from conftest import (DEFAULT_RF, admin_client, topic_partition_counts, unique_topic,
                      wait_for_topic)
from test_sql_tables import connect


@pytest.fixture
def kadmin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000,
                         client_id="weir-tests-admin")
    yield a
    a.close()


def kp_describe(kadmin, topic, keys=None):
    """{key: value} of the topic's configs as kafka-python reports them (all sources)."""
    res = kadmin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, keys)],
                                  config_filter="all")
    return {k: v["value"] for k, v in res["topic"][topic].items()}


def kp_partitions(kadmin, topic):
    (t,) = kadmin.describe_topics([topic])
    assert t["name"] == topic
    assert t["error_code"] == 0, t
    return sorted(p["partition_index"] for p in t["partitions"])


def test_kafka_python_admin_lifecycle(broker, kadmin):
    topic = unique_topic("kpadm")
    configs = {"retention.ms": "123456", "cleanup.policy": "delete",
               "segment.bytes": "1048576", "max.message.bytes": "500000"}
    res = kadmin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=DEFAULT_RF,
                                         topic_configs=configs)])
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)], res
    wait_for_topic(broker.bootstrap, topic, 6)

    assert topic in kadmin.list_topics()
    assert kp_partitions(kadmin, topic) == list(range(6))

    described = kp_describe(kadmin, topic)
    for k, v in configs.items():
        assert described.get(k) == v, f"{k}: described {described.get(k)!r}, created with {v!r}"
    # Asking for specific keys returns exactly those keys.
    assert kp_describe(kadmin, topic, ["retention.ms", "cleanup.policy"]) == {
        "retention.ms": "123456", "cleanup.policy": "delete"}

    # Creating it again fails and changes nothing.
    with pytest.raises(TopicAlreadyExistsError):
        kadmin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=DEFAULT_RF)])
    assert kp_partitions(kadmin, topic) == list(range(6))

    # Grow 6 -> 8.
    kadmin.create_partitions({topic: NewPartitions(total_count=8)})
    wait_for_topic(broker.bootstrap, topic, 8)
    assert kp_partitions(kadmin, topic) == list(range(8))

    # Alter one config; the others keep their values.
    res = kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                               {"retention.ms": "654321"})],
                               raise_on_unknown=False)
    assert res == {"topic": {topic: "OK"}}, res
    after = kp_describe(kadmin, topic)
    assert after["retention.ms"] == "654321"
    assert after["cleanup.policy"] == "delete"
    assert after["segment.bytes"] == "1048576"

    # Delete; it is gone from the listing and from metadata.
    res = kadmin.delete_topics([topic])
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)], res
    # In a cluster the deletion reaches every broker through the metadata quorum: seconds
    # under load, so the wait is generous (it ends as soon as the topic is gone).
    deadline = time.monotonic() + 30
    while topic in kadmin.list_topics() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic not in kadmin.list_topics()
    assert topic not in topic_partition_counts(broker.bootstrap)
    with pytest.raises(UnknownTopicOrPartitionError):
        kadmin.delete_topics([topic])


@pytest.mark.parametrize("bad", ["bad name!", "..", ".", "", "a" * 250, "sl/ash"])
def test_kafka_python_invalid_topic_name(broker, kadmin, bad):
    with pytest.raises(InvalidTopicError):
        kadmin.create_topics([NewTopic(bad, num_partitions=1, replication_factor=DEFAULT_RF)])
    assert bad not in topic_partition_counts(broker.bootstrap)


def test_kafka_python_validate_only_does_not_create(broker, kadmin):
    topic = unique_topic("kpval")
    res = kadmin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=DEFAULT_RF)],
                               validate_only=True)
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)], res
    time.sleep(0.5)
    assert topic not in kadmin.list_topics()
    assert topic not in topic_partition_counts(broker.bootstrap)
    # validate_only still validates.
    with pytest.raises(InvalidTopicError):
        kadmin.create_topics([NewTopic("bad name!", num_partitions=1, replication_factor=DEFAULT_RF)],
                             validate_only=True)


def test_confluent_admin_lifecycle(broker):
    a = admin_client(broker.bootstrap)
    topic = unique_topic("ckadm")
    fs = a.create_topics([CKNewTopic(topic, num_partitions=6, replication_factor=DEFAULT_RF,
                                     config={"retention.ms": "86400000",
                                             "cleanup.policy": "delete"})])
    assert fs[topic].result(15) is None
    wait_for_topic(broker.bootstrap, topic, 6, admin=a)

    res = a.describe_configs([CKConfigResource(ResourceType.TOPIC, topic)])
    (cfg,) = res.values()
    cfg = {k: e.value for k, e in cfg.result(15).items()}
    assert cfg["retention.ms"] == "86400000"
    assert cfg["cleanup.policy"] == "delete"

    fs = a.create_topics([CKNewTopic(topic, num_partitions=6, replication_factor=DEFAULT_RF)])
    with pytest.raises(Exception) as ei:
        fs[topic].result(15)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, ei.value

    fs = a.create_topics([CKNewTopic("bad name!", num_partitions=1, replication_factor=DEFAULT_RF)])
    with pytest.raises(Exception) as ei:
        fs["bad name!"].result(15)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, ei.value

    fs = a.delete_topics([topic])
    assert fs[topic].result(15) is None
    deadline = time.monotonic() + 10
    while topic in topic_partition_counts(broker.bootstrap) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert topic not in topic_partition_counts(broker.bootstrap)


def test_confluent_list_all_topics(broker):
    """AdminClient.list_topics() with no topic: librdkafka's all-topics Metadata request."""
    a = admin_client(broker.bootstrap)
    names = [unique_topic("lsa"), unique_topic("lsb")]
    for i, n in enumerate(names):
        a.create_topics([CKNewTopic(n, num_partitions=i + 1, replication_factor=DEFAULT_RF)])[n].result(15)
    md = a.list_topics(timeout=10)
    # Weir's own topics (the SQL catalog, `__weir_*`) are listed too, marked internal as Kafka
    # marks __consumer_offsets; this test counts only the ones it made.
    listed = {n: len(t.partitions) for n, t in md.topics.items() if not n.startswith("__weir_")}
    assert listed == {names[0]: 1, names[1]: 2}
    # Every broker of the bootstrap list (one, or a cluster's under WEIR_CLUSTER); the
    # controller is one of them.
    assert sorted(f"{b.host}:{b.port}" for b in md.brokers.values()) == sorted(
        broker.bootstrap.split(","))
    assert md.controller_id in {b.id for b in md.brokers.values()}


def test_weir_topics_are_marked_internal(broker, kadmin):
    """The SQL catalog is Weir's own topic: Metadata marks it internal, user topics are not."""
    # A single broker creates the catalog when its SQL engine starts; a cluster on the first
    # SQL connection (to any broker).
    with connect(getattr(broker, "first", broker), timeout=90.0) as conn:
        conn.execute("SHOW SOURCES")
    wait_for_topic(broker.bootstrap, "__weir_sql_catalog", 1)
    topic = unique_topic("user")
    kadmin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=DEFAULT_RF)])
    wait_for_topic(broker.bootstrap, topic, 1)
    described = {t["name"]: t["is_internal"] for t in
                 kadmin.describe_topics([topic, "__weir_sql_catalog"])}
    assert described == {topic: False, "__weir_sql_catalog": True}


def test_kafka_python_producer_consumer_roundtrip(broker, kadmin):
    topic = unique_topic("kprt")
    kadmin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=DEFAULT_RF)])
    wait_for_topic(broker.bootstrap, topic, 3)

    # kafka-python 3 defaults to an idempotent producer (InitProducerId); this test is about
    # plain produce/fetch, so it opts out like librdkafka's default does.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                             enable_idempotence=False)
    base_ts = int(time.time() * 1000) - 60_000
    futures = []
    for i in range(1000):
        futures.append(producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode() * (i % 9),
                                     headers=[("i", str(i).encode())], partition=i % 3,
                                     timestamp_ms=base_ts + i))
    producer.flush(30)
    acked = [f.get(timeout=30) for f in futures]
    producer.close()
    for i, md in enumerate(acked):
        assert (md.topic, md.partition, md.offset) == (topic, i % 3, i // 3), (i, md)

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    tps = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = []
    for m in consumer:
        got.append(m)
        if len(got) == 1000:
            break
    consumer.close()
    assert len(got) == 1000
    got.sort(key=lambda m: (m.partition, m.offset))
    expected = sorted(
        ((i % 3, i // 3, f"k{i}".encode(), f"v{i}".encode() * (i % 9), [("i", str(i).encode())],
          base_ts + i) for i in range(1000)))
    assert [(m.partition, m.offset, m.key, m.value, list(m.headers), m.timestamp) for m in got] \
        == expected
