"""KIP-848 consumer groups survive their coordinator: a single broker restarted (SIGTERM or
kill -9), and in a cluster the leader of the group's `__consumer_offsets` partition killed.
The members keep heartbeating with their epochs and keep their partitions: no rebalance
callback at all (no revocation, no lost assignment), the same member ids owning the same
partitions, no heartbeat refused as an unknown member or a fenced epoch (the brokers log
each refusal), and no record delivered twice (each consumer continues from its position,
which is past anything committed).

(librdkafka's describe_consumer_groups times out against Weir for a consumer-protocol
group, so ConsumerGroupDescribe is not used here.)"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import NewTopic

from cluster import Cluster, states, wait_for
from conftest import admin_client, create_topic, make_producer, produce_all, unique_topic
from test_cluster_coordinators import OFFSETS_PARTITIONS, offsets_partition, offsets_topic

PARTITIONS = 4
# Short heartbeats, so the members talk to the new coordinator soon after it starts.
SETTINGS = {"group.consumer.heartbeat.interval.ms": "500"}


class Member:
    """A `group.protocol=consumer` consumer that records its rebalance callbacks and every
    (partition, offset) it consumes."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        self.events: list[tuple[str, list[int]]] = []
        self.seen: list[tuple[int, int]] = []
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "group.protocol": "consumer", "auto.offset.reset": "earliest",
                           "enable.auto.commit": False})
        self.c.subscribe([topic],
                         on_assign=lambda _, ps: self.events.append(("assign", parts(ps))),
                         on_revoke=lambda _, ps: self.events.append(("revoke", parts(ps))),
                         on_lost=lambda _, ps: self.events.append(("lost", parts(ps))))

    def poll(self, timeout=0.1):
        for m in self.c.consume(100, timeout):
            if m.error() is None:
                self.seen.append((m.partition(), m.offset()))

    def owned(self) -> list[int]:
        return parts(self.c.assignment())

    def mark(self):
        """Remembers where the callbacks and records stood when the coordinator went."""
        self.events_at, self.seen_at = len(self.events), len(self.seen)


def parts(tps) -> list[int]:
    return sorted(tp.partition for tp in tps)


def poll_all(members, seconds: float):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for m in members:
            m.poll()


def poll_until(members, done, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for m in members:
            m.poll()
        if done():
            return
    raise AssertionError(f"timed out waiting for {what}; owned {[m.owned() for m in members]}, "
                         f"events {[m.events for m in members]}")


def produce(bootstrap: str, topic: str, start: int, n: int):
    produce_all(make_producer(bootstrap, **{"acks": "all"}),
                [{"topic": topic, "value": f"v{i}".encode(), "partition": i % PARTITIONS}
                 for i in range(start, start + n)])


def owners(members) -> dict[str, list[int]]:
    """Member id -> the partitions it owns, as the consumers see it."""
    return {m.c.memberid(): m.owned() for m in members}


FENCED = ("UNKNOWN_MEMBER_ID", "FENCED_MEMBER_EPOCH")


def log_size(broker) -> int:
    return broker.log_path.stat().st_size


def refusals_since(broker, offset: int) -> list[str]:
    """Heartbeats the broker refused as from an unknown member or a stale epoch."""
    with open(broker.log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [line for line in text.splitlines()
            if "ConsumerGroupHeartbeat refused" in line and any(e in line for e in FENCED)]


def stable_pair(bootstrap: str, topic: str, group: str) -> list[Member]:
    """Two members sharing the topic's partitions, each having consumed what was produced
    and committed only the first half of it (so a member that loses its partitions would
    read the second half again)."""
    members = [Member(bootstrap, group, topic) for _ in range(2)]
    def read_to_the_end():
        return (sorted(len(m.owned()) for m in members) == [2, 2]
                and all(tp.offset == 200 // PARTITIONS
                        for m in members for tp in m.c.position(m.c.assignment())))

    poll_until(members, read_to_the_end, 30,
               "two members with two partitions each, read to the end")
    for m in members:
        half = [tp for tp in m.c.position(m.c.assignment())]
        for tp in half:
            tp.offset = tp.offset // 2
        m.c.commit(offsets=half, asynchronous=False)
        m.mark()
    return members


def check_resumed(members, before: dict[str, list[int]], brokers_logs):
    """After the coordinator moved: no rebalance, the same assignment, no fenced heartbeat,
    no record twice. `brokers_logs`: (broker, log offset when the coordinator moved)."""
    for m in members:
        assert m.events[m.events_at:] == [], f"callbacks after the move: {m.events}"
    assert owners(members) == before
    refused = [line for b, at in brokers_logs for line in refusals_since(b, at)]
    assert refused == [], "\n".join(refused)
    earlier = {r for m in members for r in m.seen[:m.seen_at]}
    later = [r for m in members for r in m.seen[m.seen_at:]]
    again = sorted(set(r for r in later if r in earlier) | {r for r in later if later.count(r) > 1})
    assert again == [], f"{len(again)} records delivered again, e.g. {again[:5]}"
    assert len(later) == 200


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_members_keep_their_partitions_across_a_broker_restart(broker_factory, how):
    broker = broker_factory(settings=SETTINGS)
    topic = create_topic(broker.bootstrap, unique_topic("k848r"), PARTITIONS)
    group = unique_topic("g848r")
    produce(broker.bootstrap, topic, 0, 200)
    members = stable_pair(broker.bootstrap, topic, group)
    before = owners(members)
    assert sorted(map(len, before.values())) == [2, 2], before

    at = log_size(broker)
    if how == "sigterm":
        broker.stop()
    else:
        broker.kill9()
    t0 = time.monotonic()
    broker.start()
    # Long enough for several heartbeats with the restarted coordinator.
    poll_all(members, 6)
    produce(broker.bootstrap, topic, 200, 200)
    poll_until(members, lambda: sum(len(m.seen) - m.seen_at for m in members) >= 200, 30,
               "the records produced after the restart")
    poll_all(members, 1)
    print(f"\nKIP-848 {how} restart: consumption resumed, {time.monotonic() - t0:.2f}s")
    check_resumed(members, before, [(broker, at)])
    for m in members:
        m.c.close()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={
        "min.insync.replicas": "2",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
        **SETTINGS,
    }).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    c.kill_all()


def test_members_keep_their_partitions_when_the_coordinator_leader_is_killed(cluster):
    everyone = ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3))
    admin = admin_client(cluster.nodes[1].bootstrap)
    topic = unique_topic("k848c")
    group = unique_topic("g848c")
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
                        request_timeout=30)[topic].result(30)
    produce(everyone, topic, 0, 200)
    members = stable_pair(everyone, topic, group)
    before = owners(members)
    assert sorted(map(len, before.values())) == [2, 2], before

    shape = offsets_topic(cluster, 1)
    coordinator = shape[offsets_partition(group)][0]
    survivors = [cluster.nodes[i] for i in (1, 2, 3) if i != coordinator]
    logs = [(b, log_size(b)) for b in survivors]
    cluster.nodes[coordinator].kill9()
    t0 = time.monotonic()
    survivor = next(i for i in (1, 2, 3) if i != coordinator)
    wait_for("a new leader for the group's offsets partition", lambda: (
        (s := offsets_topic(cluster, survivor))
        and s[offsets_partition(group)][0] not in (-1, coordinator)), 30, cluster)
    poll_all(members, 6)
    alive = ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3) if i != coordinator)
    produce(alive, topic, 200, 200)
    poll_until(members, lambda: sum(len(m.seen) - m.seen_at for m in members) >= 200, 60,
               "the records produced after the failover")
    poll_all(members, 1)
    print(f"\nKIP-848 coordinator {coordinator} killed: consumption resumed, "
          f"{time.monotonic() - t0:.2f}s")
    check_resumed(members, before, logs)
    for m in members:
        m.c.close()
