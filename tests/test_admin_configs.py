"""Admin edges real client test suites hit: replica assignments on CreatePartitions, broker
configs (described with types, sources, synonyms; altered dynamically and persisted),
deprecated topic keys, and keyless records on compacted topics."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions

from conftest import admin_client, create_topic, topic_partition_counts, unique_topic


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
