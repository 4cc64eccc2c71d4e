"""Cluster increment 4: Kafka clients on a 3-broker cluster. Topics are created through any broker
(the quorum places them), Metadata lists every broker and each partition's leader, producers and
consumer groups bootstrapped on different brokers find the leaders and the group's coordinator,
and confluent-kafka, kafka-python and kcat all see the same cluster. A topic with RF 3 is
checked here for its metadata shape; test_cluster_replication.py writes to one through a kill -9.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                  ResourceType)
from kafka import KafkaAdminClient, KafkaConsumer

import kwire
from cluster import Cluster, states, wait_for
from conftest import admin_client, make_producer, produce_all, unique_topic

NOT_COORDINATOR = 16
UNKNOWN_MEMBER_ID = 25
COORDINATOR_LOAD_IN_PROGRESS = 14


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


def brokers_of(md) -> dict[int, str]:
    return {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}


def test_clients_produce_and_consume_across_three_brokers(cluster):
    b1, b2, b3 = (cluster.nodes[i].bootstrap for i in (1, 2, 3))
    everyone = {1: b1, 2: b2, 3: b3}

    # Created through broker 1; the answer comes once broker 1 serves the topic.
    topic = unique_topic("spread")
    admin = admin_client(b1)
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)],
                        request_timeout=30)[topic].result(30)
    # Any broker answers Metadata with the same three brokers and leaders.
    leaders = {}
    for b in (b1, b2, b3):
        md = wait_for(f"{topic} with leaders on {b}",
                      lambda b=b: _with_leaders(admin_client(b), topic, 6), 30, cluster)
        assert brokers_of(md) == everyone, md.brokers
        t = md.topics[topic]
        seen = {p: t.partitions[p].leader for p in range(6)}
        leaders = leaders or seen
        assert seen == leaders, (b, seen, leaders)
        for p in t.partitions.values():
            assert p.replicas == [p.leader] and p.isrs == [p.leader], p
    # RF 1 over three brokers: the partitions are spread over all of them.
    assert set(leaders.values()) == {1, 2, 3}, leaders

    # A second create of the same name through another broker: Kafka's error.
    admin2 = admin_client(b2)  # kept referenced: a destroyed client fails its futures
    again = admin2.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1)], request_timeout=30)[topic]
    with pytest.raises(Exception) as err:
        again.result(30)
    assert err.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, err.value
    # More replicas than brokers: INVALID_REPLICATION_FACTOR.
    bad = unique_topic("rf4")
    admin3 = admin_client(b3)
    too_many = admin3.create_topics(
        [NewTopic(bad, num_partitions=1, replication_factor=4)], request_timeout=30)[bad]
    with pytest.raises(Exception) as err:
        too_many.result(30)
    assert err.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, err.value

    # A producer bootstrapped on broker 1 writes every partition (acks=all), through the leaders.
    per_partition = 50
    messages = [{"topic": topic, "partition": p, "key": f"k{p}", "value": f"{p}:{i}"}
                for i in range(per_partition) for p in range(6)]
    reports = produce_all(make_producer(b1, acks="all"), messages)
    assert sorted({p for p, _ in reports}) == list(range(6))

    # A consumer group bootstrapped on broker 2 reads everything back, in order per partition.
    group = unique_topic("g")
    c = Consumer({"bootstrap.servers": b2, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    got: dict[int, list[str]] = {p: [] for p in range(6)}
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < len(messages):
            assert time.monotonic() < deadline, ({p: len(v) for p, v in got.items()},
                                                 cluster.logs())
            for m in c.consume(num_messages=500, timeout=0.5):
                assert m.error() is None, m.error()
                got[m.partition()].append(m.value().decode())
        # The group's offsets commit at its coordinator, whichever broker that is.
        c.commit(asynchronous=False)
        committed = c.committed([_tp(topic, p) for p in range(6)], timeout=30)
        assert [tp.offset for tp in committed] == [per_partition] * 6, committed
    finally:
        c.close()
    for p in range(6):
        assert got[p] == [f"{p}:{i}" for i in range(per_partition)], (p, got[p][:5])

    # Every broker agrees on the group's coordinator (interim placement by key hash).
    coordinators = {b: _coordinator(b, group) for b in (b1, b2, b3)}
    assert len(set(coordinators.values())) == 1, coordinators
    coordinator = next(iter(coordinators.values()))
    assert coordinator in (1, 2, 3)
    # Group requests reaching another broker are sent back to FindCoordinator.
    for i in (1, 2, 3):
        code = _heartbeat_error(cluster.nodes[i].bootstrap, group)
        assert code == (UNKNOWN_MEMBER_ID if i == coordinator else NOT_COORDINATOR), (i, code)

    # kafka-python sees the same brokers and leaders.
    kp = KafkaConsumer(bootstrap_servers=b3, request_timeout_ms=30000)
    try:
        assert kp.partitions_for_topic(topic) == set(range(6))
        cl = kp._client.cluster
        assert {b.node_id: f"{b.host}:{b.port}" for b in cl.brokers()} == everyone
        assert {p: cl.leader_for_partition(_kp_tp(topic, p)) for p in range(6)} == leaders
    finally:
        kp.close()
    ka = KafkaAdminClient(bootstrap_servers=b2, request_timeout_ms=30000)
    try:
        described = ka.describe_cluster()
        assert {b["broker_id"] for b in described["brokers"]} == {1, 2, 3}, described
        assert described["controller_id"] in (1, 2, 3), described
    finally:
        ka.close()

    # kcat -L lists the same brokers and leaders.
    md = json.loads(_kcat("-L", "-b", b3, "-t", topic, "-J"))
    assert {b["id"]: b["name"] for b in md["brokers"]} == everyone, md["brokers"]
    (t,) = md["topics"]
    assert {p["partition"]: p["leader"] for p in t["partitions"]} == leaders, t


def test_a_replication_factor_3_topic_has_three_replicas_per_partition(cluster):
    b1, b2 = cluster.nodes[1].bootstrap, cluster.nodes[2].bootstrap
    topic = unique_topic("rf3")
    admin2 = admin_client(b2)
    admin2.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)],
                         request_timeout=30)[topic].result(30)
    md = wait_for(f"{topic} with leaders", lambda: _with_leaders(admin_client(b1), topic, 3), 30,
                  cluster)
    parts = md.topics[topic].partitions
    leaders = set()
    for p in parts.values():
        assert sorted(p.replicas) == [1, 2, 3], p
        assert sorted(p.isrs) == [1, 2, 3], p
        assert p.leader == p.replicas[0], p
        leaders.add(p.leader)
    # Leaders are striped over the brokers, as Kafka's placement does.
    assert leaders == {1, 2, 3}, parts
    # kcat sees the same replica sets.
    kmd = json.loads(_kcat("-L", "-b", b1, "-t", topic, "-J"))
    for p in kmd["topics"][0]["partitions"]:
        assert sorted(r["id"] for r in p["replicas"]) == [1, 2, 3], p

    # A topic config changed through one broker is the cluster's: another broker describes it.
    admin3 = admin_client(cluster.nodes[3].bootstrap)
    change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000",
                    incremental_operation=AlterConfigOpType.SET)])
    admin3.incremental_alter_configs([change])[change].result(30)

    admin1 = admin_client(b1)

    def retention_on_1():
        res = ConfigResource(ResourceType.TOPIC, topic)
        configs = admin1.describe_configs([res])[res].result(30)
        return configs["retention.ms"].value == "3600000"

    wait_for("retention.ms seen through broker 1", retention_on_1, 30, cluster)

    # A topic deleted through one broker is gone everywhere.
    admin1.delete_topics([topic], request_timeout=30)[topic].result(30)
    for i in (1, 2, 3):
        wait_for(f"{topic} gone on node {i}",
                 lambda i=i: topic not in admin_client(cluster.nodes[i].bootstrap)
                 .list_topics(timeout=10).topics, 30, cluster)


def test_producer_ids_are_unique_across_brokers(cluster):
    """Every broker answers InitProducerId; ids come from the quorum's blocks (KIP-730), so two
    producers initialised through two brokers never share an id (they did: each broker counted
    from 0, and the two producers' sequences collided on a shared partition as a fatal
    OUT_OF_ORDER_SEQUENCE_NUMBER). A restarted broker takes a new block, never its old ids."""
    seen: dict[int, int] = {}

    def init_through(i: int):
        pid = _init_producer_id(cluster.nodes[i].bootstrap)
        assert pid not in seen, f"producer id {pid} from broker {i} already came from {seen[pid]}"
        seen[pid] = i

    for _ in range(3):
        for i in (1, 2, 3):
            init_through(i)
    cluster.nodes[2].kill9()
    cluster.nodes[2].start()
    wait_for("broker 2 unfenced again", lambda: states(cluster.info(1)).get(2) == "unfenced",
             60, cluster)
    for i in (2, 1, 3, 2):
        init_through(i)

    # Three idempotent producers, each bootstrapped on its own broker, share one partition.
    topic = unique_topic("pids")
    admin = admin_client(cluster.nodes[1].bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)],
                        request_timeout=30)[topic].result(30)
    errors = []
    producers = [make_producer(cluster.nodes[i].bootstrap, **{"enable.idempotence": True})
                 for i in (1, 2, 3)]
    for n in range(100):
        for k, p in enumerate(producers):
            p.produce(topic, value=f"{k}:{n}".encode(), partition=0,
                      on_delivery=lambda err, _m: err and errors.append(err))
        if n % 10 == 0:
            for p in producers:
                p.poll(0)
    for p in producers:
        assert p.flush(60) == 0
    assert not errors, errors[:3]


def _init_producer_id(bootstrap: str) -> int:
    """InitProducerId v0 for an idempotent producer (no transactional id), retried while the
    broker waits for a block: the producer id."""
    deadline = time.monotonic() + 30
    while True:
        with kwire.Conn(bootstrap, timeout=30) as c:
            r = c.request(kwire.request_header_v1(22, 0, 5), kwire.string(None) + kwire.i32(60000))
            assert r.i32() == 5
            r.i32()  # throttle
            error, pid, epoch = r.i16(), r.i64(), r.i16()
        if error == 0:
            assert epoch == 0 and pid >= 0, (pid, epoch)
            return pid
        assert error == COORDINATOR_LOAD_IN_PROGRESS and time.monotonic() < deadline, error
        time.sleep(0.2)


def _with_leaders(admin, topic: str, partitions: int):
    md = admin.list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None or sorted(t.partitions) != list(range(partitions)):
        return None
    if any(p.leader < 0 for p in t.partitions.values()):
        return None
    return md


def _tp(topic, p):
    from confluent_kafka import TopicPartition
    return TopicPartition(topic, p)


def _kp_tp(topic, p):
    from kafka import TopicPartition
    return TopicPartition(topic, p)


def _coordinator(bootstrap: str, group: str) -> int:
    """FindCoordinator v1 for `group` asked of `bootstrap`: the coordinator's node id."""
    with kwire.Conn(bootstrap, timeout=30) as c:
        r = c.request(kwire.request_header_v1(10, 1, 3), kwire.string(group) + kwire.i8(0))
        assert r.i32() == 3
        r.i32()  # throttle
        error = r.i16()
        r.string()  # message
        node = r.i32()
    assert error == 0, error
    return node


def _heartbeat_error(bootstrap: str, group: str) -> int:
    """Heartbeat v0 for an unknown member of `group`, sent to `bootstrap`: its error code."""
    with kwire.Conn(bootstrap, timeout=30) as c:
        body = kwire.string(group) + kwire.i32(1) + kwire.string("nobody")
        r = c.request(kwire.request_header_v1(12, 0, 4), body)
        assert r.i32() == 4
        return r.i16()


def _kcat(*args, timeout=60):
    p = subprocess.run(["kcat", *args], capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout.decode()
