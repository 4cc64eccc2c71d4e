"""ACLs as replicated metadata (issue 14): on a 3-broker cluster an ACL created through one
broker is a metadata record, enforced by every broker (each leads some partitions of the topic),
listed by every broker, kept across a kill -9 of the whole cluster, and deleted through another
broker. Driven with confluent-kafka's admin client and producer, and kafka-python's admin client.

No listener authenticates here, so every client is User:ANONYMOUS and
`allow.everyone.if.no.acl.found` is true: a DENY is what the test can see take effect."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   NewTopic, ResourcePatternType, ResourceType)

from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 6


def formed(c: Cluster):
    def check():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}
    wait_for("a controller and three unfenced brokers", check, 90, c)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    formed(c)
    yield c
    c.kill_all()


def deny_write(topic):
    return AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:ANONYMOUS",
                      "*", AclOperation.WRITE, AclPermissionType.DENY)


def acls_on(bootstrap, topic):
    admin = admin_client(bootstrap)
    f = admin.describe_acls(AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.ANY,
                                             None, None, AclOperation.ANY,
                                             AclPermissionType.ANY), request_timeout=15)
    return [(b.name, b.principal, b.operation, b.permission_type) for b in f.result(15)]


def produce_each_partition(bootstrap, topic, partitions=PARTITIONS):
    """{partition: error code or None} of one record produced to each partition."""
    results = {}
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 15000})

    def report(err, msg):
        results[msg.partition()] = None if err is None else err.code()

    for part in range(partitions):
        p.produce(topic, value=b"v", partition=part, on_delivery=report)
    p.flush(30)
    return results


def leaders(bootstrap, topic):
    md = admin_client(bootstrap).list_topics(topic, timeout=15)
    t = md.topics[topic]
    if t.error is not None or len(t.partitions) != PARTITIONS:
        return None
    got = {p: t.partitions[p].leader for p in range(PARTITIONS)}
    return got if all(v >= 0 for v in got.values()) else None


def test_an_acl_created_through_one_broker_is_enforced_by_all_and_survives_restarts(cluster):
    b = {i: cluster.nodes[i].bootstrap for i in (1, 2, 3)}
    topic, free = unique_topic("acl-denied"), unique_topic("acl-free")
    admin1 = admin_client(b[1])
    for f in admin1.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(free, 1, 1)],
                                  request_timeout=30).values():
        f.result(30)
    lead = wait_for("leaders of every partition", lambda: leaders(b[1], topic), 30, cluster)
    # RF 1 striped over three brokers: each broker leads some partition, so producing to
    # every partition asks every broker.
    assert set(lead.values()) == {1, 2, 3}, lead
    assert produce_each_partition(b[1], topic) == {p: None for p in range(PARTITIONS)}

    # Created through broker 1: a metadata record, not a file on broker 1.
    results = admin1.create_acls([deny_write(topic)], request_timeout=30)
    for f in results.values():
        assert f.result(30) is None
    expected = [(topic, "User:ANONYMOUS", AclOperation.WRITE, AclPermissionType.DENY)]
    for i in (1, 2, 3):
        wait_for(f"broker {i} to list the ACL", lambda i=i: acls_on(b[i], topic) == expected,
                 30, cluster)
    denied = {p: KafkaError.TOPIC_AUTHORIZATION_FAILED for p in range(PARTITIONS)}
    for i in (2, 3, 1):
        assert produce_each_partition(b[i], topic) == denied, f"through broker {i}"
    assert produce_each_partition(b[2], free, 1) == {0: None}

    # kafka-python's admin client (another client library) sees it through broker 3.
    from kafka import KafkaAdminClient
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ResourceType as KResourceType, ACLResourcePatternType
    kp = KafkaAdminClient(bootstrap_servers=b[3], request_timeout_ms=15000)
    found, err = kp.describe_acls(ACLFilter(
        principal=None, host=None, operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(KResourceType.TOPIC, topic,
                                               ACLResourcePatternType.ANY)))
    kp.close()
    assert [(a.principal, a.operation, a.permission_type) for a in found] == \
        [("User:ANONYMOUS", ACLOperation.WRITE, ACLPermissionType.DENY)], (found, err)

    # The whole cluster is killed (-9) and started: the ACL is in the metadata log of every
    # node, and each publishes it from its own log.
    for node in cluster.nodes.values():
        node.kill9()
    for node in cluster.nodes.values():
        node.start()
    formed(cluster)
    for i in (1, 2, 3):
        wait_for(f"broker {i} to list the ACL after the restart",
                 lambda i=i: acls_on(b[i], topic) == expected, 30, cluster)
    wait_for("leaders after the restart", lambda: leaders(b[1], topic), 60, cluster)
    for i in (3, 1):
        assert produce_each_partition(b[i], topic) == denied, f"through broker {i} after restart"

    # Deleted through broker 3; every broker lets the writes through again.
    admin3 = admin_client(b[3])
    deleted = admin3.delete_acls([AclBindingFilter(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, None, None, AclOperation.ANY,
        AclPermissionType.ANY)], request_timeout=30)
    [(_, f)] = deleted.items()
    assert [(x.name, x.operation) for x in f.result(30)] == [(topic, AclOperation.WRITE)]
    for i in (1, 2, 3):
        wait_for(f"broker {i} to drop the ACL", lambda i=i: acls_on(b[i], topic) == [], 30,
                 cluster)
    deadline = time.monotonic() + 30
    while True:
        got = produce_each_partition(b[2], topic)
        if got == {p: None for p in range(PARTITIONS)} or time.monotonic() > deadline:
            break
    assert got == {p: None for p in range(PARTITIONS)}, got


def test_an_invalid_acl_is_refused_by_the_cluster_with_kafkas_error(cluster):
    admin = admin_client(cluster.nodes[2].bootstrap)
    bad = AclBinding(ResourceType.CLUSTER, "not-kafka-cluster", ResourcePatternType.LITERAL,
                     "User:x", "*", AclOperation.ALTER, AclPermissionType.ALLOW)
    [(_, f)] = admin.create_acls([bad], request_timeout=15).items()
    with pytest.raises(Exception) as e:
        f.result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, e.value
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(everything, request_timeout=15).result(15) == []
