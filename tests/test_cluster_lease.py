"""No stale answers from a former leader or coordinator (design §4.9, the broker's lease).

A broker SIGSTOPped longer than its session is fenced while it sleeps: the controller moves its
leaderships, the group's offsets partition among them, and clients commit and produce through
the new leaders. When it resumes, its memory still says it leads: the requests already waiting
in its sockets (sent while it was stopped, so they are read before any heartbeat could go) must
not be answered from that memory. The fault harness's 200-episode run saw exactly this: an
OffsetFetch answered ~1,300 below an acknowledged commit 0.3 s after a 26 s pause ended.

Each test pipelines, on a connection opened before the pause, an OffsetFetch for the group, a
ListOffsets(latest) and a Fetch for a partition the broker led, all sent while it is stopped,
then resumes it and reads the three answers: each must be a refusal (NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, NOT_LEADER_OR_FOLLOWER, ...) or the current truth, never the
pre-pause state. The victim is the group's coordinator, and either also the active controller
(its own stale controller state must not vouch for it) or not.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import kwire
from cluster import Cluster, states, wait_for
from conftest import admin_client, unique_topic
from kwire import Reader, i8, i16, i32, i64, request_header_v1, string

OFFSETS_PARTITIONS = 6
BEFORE = 5     # records (and the committed offset) before the pause
AFTER = 5      # records produced, and the offset committed, through the new leaders

NOT_LEADER_OR_FOLLOWER = 6
REFUSED_COORDINATOR = {14, 15, 16}  # LOAD_IN_PROGRESS, NOT_AVAILABLE, NOT_COORDINATOR
REFUSED_PARTITION = {NOT_LEADER_OR_FOLLOWER, 5, 74, 75}  # + LEADER_NOT_AVAILABLE, epochs


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={
        "min.insync.replicas": "2",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
    }).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    yield c
    for b in c.nodes.values():
        if b.alive():
            os.kill(b.proc.pid, signal.SIGCONT)
    c.kill_all()


def find_coordinator(bootstrap: str, group: str) -> tuple[int, int]:
    """(error, node id) of FindCoordinator v1 for `group`, asked of `bootstrap`."""
    with kwire.Conn(bootstrap, timeout=10) as conn:
        r = conn.request(request_header_v1(10, 1, 3), string(group) + i8(0))
        assert r.i32() == 3
        r.i32()  # throttle
        error = r.i16()
        r.string()
        node = r.i32()
        return error, node


def offset_fetch_v2(group: str, topic: str, partition: int, corr: int) -> bytes:
    body = string(group) + i32(1) + string(topic) + i32(1) + i32(partition)
    return kwire.frame(request_header_v1(9, 2, corr) + body)


def read_offset_fetch_v2(r: Reader) -> tuple[int, int, int]:
    """(top-level error, partition error, committed offset)."""
    offset, part_error = -1, 0
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            offset = r.i64()
            r.string()
            part_error = r.i16()
    return r.i16(), part_error, offset


def list_offsets_v1(topic: str, partition: int, corr: int) -> bytes:
    body = i32(-1) + i32(1) + string(topic) + i32(1) + i32(partition) + i64(-1)
    return kwire.frame(request_header_v1(2, 1, corr) + body)


def read_list_offsets_v1(r: Reader) -> tuple[int, int]:
    """(error, offset)."""
    error, offset = -1, -1
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            error = r.i16()
            r.i64()
            offset = r.i64()
    return error, offset


def fetch_v4(topic: str, partition: int, offset: int, corr: int) -> bytes:
    body = (i32(-1) + i32(0) + i32(0) + i32(1 << 20) + i8(0)
            + i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(1 << 20))
    return kwire.frame(request_header_v1(1, 4, corr) + body)


def read_fetch_v4(r: Reader) -> tuple[int, int]:
    """(error, high watermark)."""
    r.i32()  # throttle
    error, hw = -1, -1
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            error = r.i16()
            hw = r.i64()
            r.i64()  # last stable offset
            n = r.i32()
            for _ in range(max(n, 0)):
                r.i64()
                r.i64()
            size = r.i32()
            r.pos += max(size, 0)
    return error, hw


def leaders(bootstrap: str, topic: str) -> dict[int, int] | None:
    md = admin_client(bootstrap).list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p.id: p.leader for p in t.partitions.values()}


def commit(bootstrap: str, group: str, topic: str, partition: int, offset: int):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    deadline = time.monotonic() + 60
    while True:
        try:
            c.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
            break
        except Exception as e:  # retried: the coordinator may be moving
            if time.monotonic() > deadline:
                raise AssertionError(f"commit of {offset} never acknowledged: {e}")
            time.sleep(0.2)
    got = c.committed([TopicPartition(topic, partition)], timeout=30)[0].offset
    c.close()
    assert got == offset, (got, offset)


@pytest.mark.parametrize("victim_role", ["controller", "not_controller"])
def test_a_resumed_former_leader_answers_nothing_from_before_its_pause(cluster, victim_role):
    everyone = ",".join(b.bootstrap for b in cluster.nodes.values())
    controller = cluster.info(1)["controller"]
    # A group coordinated by the victim: the controller or another broker.
    want = (lambda n: n == controller) if victim_role == "controller" \
        else (lambda n: n != controller)
    group, victim = None, None
    deadline = time.monotonic() + 60
    while group is None:
        assert time.monotonic() < deadline, "no group coordinated by the wanted broker"
        for i in range(200):
            g = f"lease-{victim_role}-{i}"
            error, node = find_coordinator(cluster.nodes[1].bootstrap, g)
            if error == 0 and want(node):
                group, victim = g, node
                break
            if error != 0:  # the offsets topic is being created
                time.sleep(0.5)
                break
    others = [i for i in cluster.nodes if i != victim]
    via_others = ",".join(cluster.nodes[i].bootstrap for i in others)

    # A topic with a partition the victim leads.
    topic = unique_topic("lease")
    admin = admin_client(everyone)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)],
                        request_timeout=30)[topic].result(30)
    (led,) = wait_for("a partition led by the victim", lambda: next(
        ((p,) for p, l in (leaders(everyone, topic) or {}).items() if l == victim), None), 30,
        cluster)
    prod = Producer({"bootstrap.servers": everyone, "acks": "all", "enable.idempotence": True})
    for i in range(BEFORE):
        prod.produce(topic, value=f"before-{i}".encode(), partition=led)
    assert prod.flush(60) == 0
    commit(everyone, group, topic, led, BEFORE)

    conn = kwire.Conn(cluster.nodes[victim].bootstrap, timeout=60)
    kwire.api_versions(conn)  # the connection is served before the pause
    pid = cluster.nodes[victim].proc.pid
    os.kill(pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        # The controller fences the victim and moves its leaderships.
        wait_for("another coordinator for the group", lambda: (
            (r := find_coordinator(cluster.nodes[others[0]].bootstrap, group))[0] == 0
            and r[1] != victim), 60, cluster)
        wait_for("another leader for the partition", lambda: (
            (ls := leaders(via_others, topic)) and ls.get(led) not in (None, -1, victim)), 60,
            cluster)
        prod2 = Producer({"bootstrap.servers": via_others, "acks": "all",
                          "enable.idempotence": True})
        for i in range(AFTER):
            prod2.produce(topic, value=f"after-{i}".encode(), partition=led)
        assert prod2.flush(60) == 0
        commit(via_others, group, topic, led, BEFORE + AFTER)
        # Sent while the victim sleeps: read by it before any heartbeat of its can go.
        conn.send_raw(offset_fetch_v2(group, topic, led, 101)
                      + list_offsets_v1(topic, led, 102)
                      + fetch_v4(topic, led, BEFORE, 103))
    finally:
        paused = time.monotonic() - stopped_at
        os.kill(pid, signal.SIGCONT)

    answers = {}
    for _ in range(3):
        r = Reader(conn.recv_frame())
        answers[r.i32()] = r
    conn.close()
    top_error, part_error, committed = read_offset_fetch_v2(answers[101])
    lo_error, lo_offset = read_list_offsets_v1(answers[102])
    fetch_error, fetch_hw = read_fetch_v4(answers[103])
    print(f"\nvictim {victim} ({victim_role}) paused {paused:.1f} s; OffsetFetch: error "
          f"{top_error}/{part_error} offset {committed}; ListOffsets: error {lo_error} offset "
          f"{lo_offset}; Fetch: error {fetch_error} hw {fetch_hw}")

    assert top_error in REFUSED_COORDINATOR or part_error in REFUSED_COORDINATOR or (
        top_error == 0 and part_error == 0 and committed == BEFORE + AFTER), \
        f"stale OffsetFetch: {committed} (acknowledged {BEFORE + AFTER})\n{cluster.logs()}"
    assert lo_error in REFUSED_PARTITION or (lo_error == 0 and lo_offset >= BEFORE + AFTER), \
        f"stale ListOffsets: {lo_offset} (acknowledged end {BEFORE + AFTER})"
    assert fetch_error in REFUSED_PARTITION or (fetch_error == 0
                                                and fetch_hw >= BEFORE + AFTER), \
        f"stale Fetch: high watermark {fetch_hw} (acknowledged end {BEFORE + AFTER})"

    # Once it caught up, the resumed broker sends clients to the new coordinator.
    wait_for("the resumed broker naming the new coordinator", lambda: (
        (r := find_coordinator(cluster.nodes[victim].bootstrap, group))[0] == 0
        and r[1] != victim), 60, cluster)


# --- The listing APIs behind the lease --------------------------------------------------------
# ListGroups, ListTransactions and DescribeProducers read the coordinator shards and the
# partition producer state this broker holds in memory. Without a lease (here: no quorum, the
# other two brokers stopped) that memory may be stale, so they refuse as the group,
# transaction and partition requests do.

LIST_REFUSED = {14, 15}  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE


def compact_string(r: Reader) -> str | None:
    n = r.uvarint() - 1
    if n < 0:
        return None
    s = r.data[r.pos:r.pos + n]
    r.pos += n
    return s.decode()


def skip_tags(r: Reader):
    for _ in range(r.uvarint()):
        r.uvarint()
        r.pos += r.uvarint()


def find_coordinator_of(bootstrap: str, key: str, key_type: int) -> tuple[int, int]:
    with kwire.Conn(bootstrap, timeout=10) as conn:
        r = conn.request(request_header_v1(10, 1, 3), string(key) + i8(key_type))
        assert r.i32() == 3
        r.i32()  # throttle
        error = r.i16()
        r.string()
        return error, r.i32()


def list_groups_v0(corr: int) -> bytes:
    return kwire.frame(request_header_v1(16, 0, corr))


def read_list_groups_v0(r: Reader) -> tuple[int, list[str]]:
    error = r.i16()
    groups = []
    for _ in range(r.i32()):
        groups.append(r.string())
        r.string()  # protocol type
    return error, groups


def list_transactions_v0(corr: int) -> bytes:
    # No state filter, no producer id filter.
    body = kwire.uvarint(1) + kwire.uvarint(1) + kwire.uvarint(0)
    return kwire.frame(kwire.request_header_v2(66, 0, corr) + body)


def read_list_transactions_v0(r: Reader) -> tuple[int, list[str]]:
    skip_tags(r)  # response header v1
    r.i32()  # throttle
    error = r.i16()
    for _ in range(r.uvarint() - 1):
        compact_string(r)
    ids = []
    for _ in range(r.uvarint() - 1):
        ids.append(compact_string(r))
        r.i64()
        compact_string(r)
        skip_tags(r)
    return error, ids


def describe_producers_v0(topic: str, partition: int, corr: int) -> bytes:
    body = (kwire.uvarint(2) + kwire.compact_string(topic) + kwire.uvarint(2) + i32(partition)
            + kwire.uvarint(0) + kwire.uvarint(0))
    return kwire.frame(kwire.request_header_v2(61, 0, corr) + body)


def read_describe_producers_v0(r: Reader) -> tuple[int, int]:
    """(partition error, active producers)."""
    skip_tags(r)
    r.i32()  # throttle
    error, producers = -1, -1
    for _ in range(r.uvarint() - 1):
        compact_string(r)
        for _ in range(r.uvarint() - 1):
            r.i32()
            error = r.i16()
            compact_string(r)
            producers = r.uvarint() - 1
            for _ in range(producers):
                r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64()
                skip_tags(r)
            skip_tags(r)
        skip_tags(r)
    return error, producers


def listings(bootstrap: str, topic: str, partition: int) -> dict[str, tuple]:
    """ListGroups, ListTransactions and DescribeProducers, pipelined on one connection."""
    with kwire.Conn(bootstrap, timeout=60) as conn:
        conn.send_raw(list_groups_v0(201) + list_transactions_v0(202)
                      + describe_producers_v0(topic, partition, 203))
        answers = {}
        for _ in range(3):
            r = Reader(conn.recv_frame())
            answers[r.i32()] = r
    return {"ListGroups": read_list_groups_v0(answers[201]),
            "ListTransactions": read_list_transactions_v0(answers[202]),
            "DescribeProducers": read_describe_producers_v0(answers[203])}


def keyed_by(bootstrap: str, prefix: str, key_type: int, node: int) -> str:
    """A group (key_type 0) or transactional id (1) coordinated by `node`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for i in range(300):
            key = f"{prefix}-{i}"
            error, coordinator = find_coordinator_of(bootstrap, key, key_type)
            if error != 0:  # the internal topic is being created
                time.sleep(0.5)
                break
            if coordinator == node:
                return key
    raise AssertionError(f"no {prefix} coordinated by broker {node}")


def test_without_a_lease_nothing_is_listed_from_memory(cluster):
    everyone = ",".join(b.bootstrap for b in cluster.nodes.values())
    group = keyed_by(cluster.nodes[1].bootstrap, "lease-list", 0, 1)
    victim = 1
    txn_id = keyed_by(cluster.nodes[1].bootstrap, "lease-txn", 1, victim)
    topic = unique_topic("lease-list")
    admin = admin_client(everyone)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)],
                        request_timeout=30)[topic].result(30)
    (led,) = wait_for("a partition led by the victim", lambda: next(
        ((p,) for p, l in (leaders(everyone, topic) or {}).items() if l == victim), None), 30,
        cluster)
    tx = Producer({"bootstrap.servers": everyone, "transactional.id": txn_id})
    tx.init_transactions(60)
    tx.begin_transaction()
    tx.produce(topic, value=b"in a transaction", partition=led)
    tx.commit_transaction(60)
    commit(everyone, group, topic, led, 1)

    # With the lease: the victim lists what it coordinates and leads.
    before = listings(cluster.nodes[victim].bootstrap, topic, led)
    print(f"\nwith the lease: {before}")
    assert before["ListGroups"][0] == 0 and group in before["ListGroups"][1], before
    assert before["ListTransactions"][0] == 0 and txn_id in before["ListTransactions"][1], before
    assert before["DescribeProducers"][0] == 0 and before["DescribeProducers"][1] >= 1, before

    # No quorum: the victim's lease lapses (4/5 of a session after its last answered
    # heartbeat); the requests wait for it (5 s at most), then refuse.
    others = [i for i in cluster.nodes if i != victim]
    for i in others:
        os.kill(cluster.nodes[i].proc.pid, signal.SIGSTOP)
    try:
        time.sleep(3)
        after = listings(cluster.nodes[victim].bootstrap, topic, led)
    finally:
        for i in others:
            os.kill(cluster.nodes[i].proc.pid, signal.SIGCONT)
    print(f"without a lease: {after}")
    assert after["ListGroups"][0] in LIST_REFUSED and after["ListGroups"][1] == [], after
    assert after["ListTransactions"][0] in LIST_REFUSED and after["ListTransactions"][1] == [], \
        after
    assert after["DescribeProducers"][0] in REFUSED_PARTITION, after

    # The quorum back, the lease comes back and the victim lists again.
    wait_for("the victim listing again", lambda: (
        (now := listings(cluster.nodes[victim].bootstrap, topic, led))["ListGroups"][0] == 0
        and now["ListTransactions"][0] == 0), 60, cluster)
