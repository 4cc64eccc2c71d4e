"""ACLs as replicated metadata (issue 14): on a 3-broker cluster an ACL created through one
broker is a metadata record, enforced by every broker (each leads some partitions of the topic),
listed by every broker, kept across a kill -9 and restart of every broker, and deleted through another
broker. Driven with confluent-kafka's admin client and producer, and kafka-python's admin client.

No listener authenticates here, so every client is User:ANONYMOUS and
`allow.everyone.if.no.acl.found` is true: a DENY is what the test can see take effect."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
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
    try:
        return [(b.name, b.principal, b.operation, b.permission_type) for b in f.result(15)]
    except Exception as e:  # a broker just restarted: the caller waits and asks again
        return f"failed: {e!r}"


def produce_each_partition(bootstrap, topic, partitions=PARTITIONS):
    """{partition: error code or None} of one record produced to each partition."""
    results = {}
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 15000})

    def report(err, msg):
        results[msg.partition()] = None if err is None else err.code()

    for part in range(partitions):
        try:
            p.produce(topic, value=b"v", partition=part, on_delivery=report)
        except KafkaException as e:
            # librdkafka refuses at once once a Metadata answer marked the topic unauthorized
            # (the deny also hides it from Describe): the same error, reported sooner.
            results[part] = e.args[0].code()
    p.flush(30)
    return results


def leaders(bootstrap, topic):
    md = admin_client(bootstrap).list_topics(topic, timeout=15)
    t = md.topics[topic]
    if t.error is not None or len(t.partitions) != PARTITIONS:
        return None
    got = {p: t.partitions[p].leader for p in range(PARTITIONS)}
    return got if all(v >= 0 for v in got.values()) else None


def deny_describe(topic):
    return AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:ANONYMOUS",
                      "*", AclOperation.DESCRIBE, AclPermissionType.DENY)


def metadata_error(bootstrap, topic):
    """The error code a broker's Metadata answer gives for `topic` (None: none)."""
    try:
        t = admin_client(bootstrap).list_topics(topic, timeout=15).topics[topic]
    except Exception as e:  # a broker just restarted: the caller waits and asks again
        return f"failed: {e!r}"
    return None if t.error is None else t.error.code()


def test_an_acl_created_through_one_broker_is_enforced_by_all_and_survives_restarts(cluster):
    b = {i: cluster.nodes[i].bootstrap for i in (1, 2, 3)}
    topic, hidden = unique_topic("acl-denied"), unique_topic("acl-hidden")
    admin1 = admin_client(b[1])
    for f in admin1.create_topics([NewTopic(topic, PARTITIONS, 3), NewTopic(hidden, 1, 1)],
                                  request_timeout=30).values():
        f.result(30)
    lead = wait_for("leaders of every partition", lambda: leaders(b[1], topic), 30, cluster)
    # Leaders striped over three brokers: each broker leads some partition, so producing to
    # every partition asks every broker.
    assert set(lead.values()) == {1, 2, 3}, lead
    assert produce_each_partition(b[1], topic) == {p: None for p in range(PARTITIONS)}
    for i in (1, 2, 3):
        assert metadata_error(b[i], hidden) is None

    # Created through broker 1: metadata records, not a file on broker 1.
    results = admin1.create_acls([deny_write(topic), deny_describe(hidden)], request_timeout=30)
    for f in results.values():
        assert f.result(30) is None
    expected = [(topic, "User:ANONYMOUS", AclOperation.WRITE, AclPermissionType.DENY)]
    for i in (1, 2, 3):
        wait_for(f"broker {i} to list the ACL", lambda i=i: acls_on(b[i], topic) == expected,
                 30, cluster)
    denied = {p: KafkaError.TOPIC_AUTHORIZATION_FAILED for p in range(PARTITIONS)}
    for i in (2, 3, 1):
        assert produce_each_partition(b[i], topic) == denied, f"through broker {i}"
        # Each broker's own Metadata answer enforces the DENY DESCRIBE.
        assert metadata_error(b[i], hidden) == KafkaError.TOPIC_AUTHORIZATION_FAILED, i

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

    # Every broker is killed (-9) and started again, one after the other: each publishes the
    # ACLs from its own metadata log and enforces them.
    for i, node in cluster.nodes.items():
        node.kill9()
        node.start()
        formed(cluster)
        wait_for(f"broker {i} to list the ACL after its restart",
                 lambda i=i: acls_on(b[i], topic) == expected, 60, cluster)
        wait_for(f"broker {i} to enforce the ACL after its restart",
                 lambda i=i: metadata_error(b[i], hidden) == KafkaError.TOPIC_AUTHORIZATION_FAILED,
                 60, cluster)

    # Deleted through broker 3; every broker drops them.
    admin3 = admin_client(b[3])
    deleted = admin3.delete_acls([AclBindingFilter(
        ResourceType.TOPIC, None, ResourcePatternType.LITERAL, "User:ANONYMOUS", None,
        AclOperation.ANY, AclPermissionType.DENY)], request_timeout=30)
    [(_, f)] = deleted.items()
    assert sorted((x.name, x.operation) for x in f.result(30)) == sorted(
        [(topic, AclOperation.WRITE), (hidden, AclOperation.DESCRIBE)])
    for i in (1, 2, 3):
        wait_for(f"broker {i} to drop the ACLs",
                 lambda i=i: acls_on(b[i], topic) == [] and metadata_error(b[i], hidden) is None,
                 30, cluster)


def test_an_invalid_acl_is_refused_by_the_cluster_with_kafkas_error(cluster):
    admin = admin_client(cluster.nodes[2].bootstrap)
    bad = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:x",
                     "not-an-ip-address", AclOperation.READ, AclPermissionType.ALLOW)
    [(_, f)] = admin.create_acls([bad], request_timeout=15).items()
    with pytest.raises(Exception) as e:
        f.result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, e.value
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(everything, request_timeout=15).result(15) == []
