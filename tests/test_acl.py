"""ACLs with real clients (confluent-kafka) over a SASL_PLAINTEXT SCRAM listener: the ACL admin
APIs, and a matrix of allowed, denied, prefixed, deny-wins and super-user cases for produce,
consume, group commits, topic creation and transactions; Metadata hiding topics; ACLs kept
across a kill -9.

The broker has a PLAINTEXT listener (the harness's readiness port, User:ANONYMOUS there) and a
SASL_PLAINTEXT one; with an authenticating listener `allow.everyone.if.no.acl.found` defaults
to false, so a principal no ACL names may do nothing. `User:admin` is the super user.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

from conftest import free_port
from test_security import create_user_offline

pytestmark = pytest.mark.timeout(180)

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
MECH = "SCRAM-SHA-512"


class Cluster:
    def __init__(self, broker, sasl_port):
        self.broker = broker
        self.sasl = f"127.0.0.1:{sasl_port}"

    def conf(self, user, **extra):
        return {"bootstrap.servers": self.sasl, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": MECH, "sasl.username": user, "sasl.password": USERS[user],
                **extra}

    def admin(self, user="admin"):
        return AdminClient(self.conf(user))


@pytest.fixture
def acl_broker(broker_factory, tmp_path):
    port, sasl = free_port(), free_port()
    data_dir = tmp_path / "acl-data"
    data_dir.mkdir()
    for user, password in USERS.items():
        create_user_offline(data_dir, user, password)
    b = broker_factory(data_dir=data_dir, port=port, settings={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "super.users": "User:admin",
    })
    return Cluster(b, sasl)


def allow(restype, name, principal, op, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW):
    return AclBinding(restype, name, pattern, principal, "*", op, permission)


def grant(c: Cluster, *bindings):
    admin = c.admin()  # kept alive until the futures resolve
    results = admin.create_acls(list(bindings))
    for f in results.values():
        f.result(timeout=15)


def make_topics(c: Cluster, *names):
    admin = c.admin()
    fs = admin.create_topics([NewTopic(n, 1, 1) for n in names])
    for f in fs.values():
        f.result(timeout=15)


def produce(conf, topic, n=3):
    """Returns the delivery errors (none when every record was written)."""
    errors = []
    p = Producer({**conf, "message.timeout.ms": 8000})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(),
                  on_delivery=lambda err, msg: err and errors.append(err))
    p.flush(15)
    return errors


def consume(conf, topic, group, n, timeout=20):
    """(values read, errors seen) with group `group`, committing synchronously."""
    errors = []
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "error_cb": errors.append})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            if m.error().code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                    KafkaError.GROUP_AUTHORIZATION_FAILED):
                break
            continue
        got.append(m.value())
    if got:
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            errors.append(e.args[0])
    c.close()
    return got, errors


def codes(errors):
    return {e.code() for e in errors}


def test_acl_admin_round_trip_and_restart(acl_broker):
    c = acl_broker
    bindings = [
        allow(ResourceType.TOPIC, "orders", "User:alice", AclOperation.READ),
        allow(ResourceType.TOPIC, "logs-", "User:alice", AclOperation.WRITE,
              pattern=ResourcePatternType.PREFIXED),
        allow(ResourceType.GROUP, "*", "User:bob", AclOperation.ALL,
              permission=AclPermissionType.DENY),
    ]
    grant(c, *bindings)
    admin = c.admin()
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    described = admin.describe_acls(everything).result(timeout=15)
    assert sorted(map(str, described)) == sorted(map(str, bindings))
    # MATCH: the ACLs that apply to topic logs-app.
    matching = admin.describe_acls(AclBindingFilter(
        ResourceType.TOPIC, "logs-app", ResourcePatternType.MATCH, None, None, AclOperation.ANY,
        AclPermissionType.ANY)).result(timeout=15)
    assert [b.name for b in matching] == ["logs-"]
    # Only the cluster's DESCRIBE/ALTER holders may see or change ACLs.
    # (librdkafka may surface DescribeAcls' CLUSTER_AUTHORIZATION_FAILED as an empty answer;
    # the handler tests check the wire error.)
    alice = c.admin("alice")
    try:
        assert alice.describe_acls(everything).result(timeout=15) == []
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as e:
        list(alice.create_acls([bindings[0]]).values())[0].result(timeout=15)
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    # Kept across kill -9.
    c.broker.kill9()
    c.broker.start()
    admin = c.admin()
    described = admin.describe_acls(everything).result(timeout=15)
    assert sorted(map(str, described)) == sorted(map(str, bindings))

    deleted = admin_delete(c, AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY,
                                               "User:alice", None, AclOperation.ANY,
                                               AclPermissionType.ANY))
    assert sorted(b.name for b in deleted) == ["logs-", "orders"]
    left = admin.describe_acls(everything).result(timeout=15)
    assert [b.restype for b in left] == [ResourceType.GROUP]


def admin_delete(c, f):
    admin = c.admin()
    return list(admin.delete_acls([f]).values())[0].result(timeout=15)


def test_produce_consume_matrix(acl_broker):
    c = acl_broker
    make_topics(c, "orders", "logs-app", "logs-secret", "hidden")
    grant(c,
          allow(ResourceType.TOPIC, "orders", "User:alice", AclOperation.WRITE),
          allow(ResourceType.TOPIC, "logs-", "User:alice", AclOperation.READ,
                pattern=ResourcePatternType.PREFIXED),
          allow(ResourceType.TOPIC, "logs-secret", "User:alice", AclOperation.READ,
                permission=AclPermissionType.DENY),
          allow(ResourceType.GROUP, "alice-", "User:alice", AclOperation.READ,
                pattern=ResourcePatternType.PREFIXED))
    admin_conf = c.conf("admin")
    for t in ("logs-app", "logs-secret"):
        assert produce(admin_conf, t) == []  # the super user may do anything

    # Produce: allowed with WRITE; denied without (READ does not imply WRITE), and for bob.
    assert produce(c.conf("alice"), "orders") == []
    assert codes(produce(c.conf("alice"), "logs-app")) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
    assert codes(produce(c.conf("bob"), "orders")) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}

    # Consume with a group and commit: READ on the prefixed topic and group.
    got, errors = consume(c.conf("alice"), "logs-app", "alice-g1", 3)
    assert got == [b"v0", b"v1", b"v2"], errors
    committed = Consumer({**c.conf("admin"), "group.id": "alice-g1"}).committed(
        [TopicPartition("logs-app", 0)], timeout=15)
    assert committed[0].offset == 3
    # DENY wins over the prefixed ALLOW.
    got, errors = consume(c.conf("alice"), "logs-secret", "alice-g2", 3, timeout=10)
    assert got == [] and KafkaError.TOPIC_AUTHORIZATION_FAILED in codes(errors), errors
    # A group without READ.
    got, errors = consume(c.conf("alice"), "logs-app", "other-group", 3, timeout=10)
    assert got == [] and KafkaError.GROUP_AUTHORIZATION_FAILED in codes(errors), errors

    # Metadata lists only what alice may DESCRIBE (READ and WRITE imply it; the DENY of READ
    # on logs-secret does not deny DESCRIBE).
    listed = set(c.admin("alice").list_topics(timeout=15).topics)
    assert listed == {"orders", "logs-app", "logs-secret"}
    md = c.admin("alice").list_topics(topic="hidden", timeout=15)
    assert md.topics["hidden"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert set(c.admin("admin").list_topics(timeout=15).topics) >= {"hidden", "logs-secret"}


def test_create_topics_and_transactions(acl_broker):
    c = acl_broker
    # CreateTopics: needs CREATE on the cluster or the topic.
    alice = c.admin("alice")
    new = alice.create_topics([NewTopic("alice-new", 1, 1)])["alice-new"]
    with pytest.raises(KafkaException) as e:
        new.result(timeout=15)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    grant(c, allow(ResourceType.TOPIC, "alice-", "User:alice", AclOperation.CREATE,
                   pattern=ResourcePatternType.PREFIXED))
    alice.create_topics([NewTopic("alice-new", 1, 1)])["alice-new"].result(timeout=15)
    with pytest.raises(KafkaException):
        alice.create_topics([NewTopic("other", 1, 1)])["other"].result(timeout=15)

    # Transactions: WRITE on the transactional id, and on the topic.
    grant(c, allow(ResourceType.TOPIC, "alice-new", "User:alice", AclOperation.WRITE))
    txid = "tx-" + uuid.uuid4().hex[:6]
    p = Producer(c.conf("alice", **{"transactional.id": txid}))
    with pytest.raises(KafkaException) as e:
        p.init_transactions(15)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    grant(c, allow(ResourceType.TRANSACTIONAL_ID, "tx-", "User:alice", AclOperation.WRITE,
                   pattern=ResourcePatternType.PREFIXED))
    p = Producer(c.conf("alice", **{"transactional.id": txid}))
    p.init_transactions(15)
    p.begin_transaction()
    for i in range(3):
        p.produce("alice-new", value=f"t{i}".encode())
    p.commit_transaction(15)
    got, errors = consume(c.conf("admin", **{"isolation.level": "read_committed"}), "alice-new",
                          "admin-g", 3)
    assert got == [b"t0", b"t1", b"t2"], errors


def test_weir_acl_cli(broker):
    """`weir acl` over PLAINTEXT: no authenticating listener, so ANONYMOUS may manage ACLs
    until an ACL names the cluster."""
    import subprocess

    from conftest import WEIR_BIN

    def weir(*args):
        p = subprocess.run([WEIR_BIN, "acl", *args, "--brokers", broker.bootstrap],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return p.stdout

    out = weir("create", "--allow-principal", "User:alice", "--allow-principal", "User:bob",
               "--operation", "read", "--operation", "describe", "--topic", "logs-",
               "--resource-pattern-type", "prefixed")
    assert "created 4 ACL(s)" in out
    weir("create", "--deny-principal", "User:bob", "--operation", "write", "--group", "g1")
    listed = weir("list")
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert len(rows) == 5, listed
    assert ["User:bob", "*", "WRITE", "DENY", "GROUP", "g1", "LITERAL"] in rows
    # MATCH: what applies to topic logs-app.
    matched = weir("list", "--topic", "logs-app", "--resource-pattern-type", "match")
    assert len(matched.splitlines()) == 5, matched
    deleted = weir("delete", "--principal", "User:bob")
    assert "deleted 3 ACL(s)" in deleted
    rows = [line.split() for line in weir("list").splitlines()[1:]]
    assert {r[0] for r in rows} == {"User:alice"} and len(rows) == 2
    p = subprocess.run([WEIR_BIN, "acl", "create", "--allow-principal", "alice", "--operation",
                        "read", "--topic", "t", "--brokers", broker.bootstrap],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "principal" in p.stderr
