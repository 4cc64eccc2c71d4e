"""Consumer groups (classic protocol) with real clients, and the `weir group` CLI.

confluent-kafka (librdkafka) and kafka-python consumers subscribe, share partitions, rebalance
when a member leaves or dies, and resume from committed offsets, also across broker restarts.
The CLI is checked against what those consumers committed and own.

Timings that depend on the machine are printed (run with `pytest -s` to see them) and only
bounded generously.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

import kwire
from conftest import create_topic, make_producer, produce_all, run_weir, unique_topic

FAST = {"group.initial.rebalance.delay.ms": "0"}
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
STRATEGIES = ["default", "cooperative-sticky", "roundrobin"]


def unique_group(prefix="g") -> str:
    return unique_topic(prefix)


def consumer_conf(bootstrap: str, group: str, strategy: str = "default", **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "classic",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": HEARTBEAT_MS,
    }
    if strategy != "default":
        conf["partition.assignment.strategy"] = strategy
    conf.update(extra)
    return conf


class Member:
    """One confluent-kafka consumer in a group, driven by `step()` from the test's thread.

    It commits synchronously after processing each batch and, for partitions being revoked,
    in the revoke callback, so a clean hand-over redelivers nothing."""

    def __init__(self, bootstrap, group, topic, name, strategy="default", **extra):
        self.name = name
        self.topic = topic
        self.processed: list[tuple[int, int]] = []  # (partition, offset)
        self.pending: dict[int, int] = {}  # partition -> next offset, not yet committed
        self.commit_errors: list[str] = []
        self.retried_commits = 0
        self.errors: list[str] = []
        self.revocations = 0
        self.losses = 0
        self.closed = False
        self.c = Consumer(consumer_conf(bootstrap, group, strategy, **{"client.id": name, **extra}))
        self.c.subscribe([topic], on_revoke=self._on_revoke, on_lost=self._on_lost)

    def _on_revoke(self, consumer, partitions):
        self.revocations += 1
        self.commit({tp.partition for tp in partitions})

    def _on_lost(self, consumer, partitions):
        # Lost partitions may already belong to someone else: committing would be refused.
        self.losses += 1
        for tp in partitions:
            self.pending.pop(tp.partition, None)

    def commit(self, only=None):
        offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(self.pending.items())
                   if only is None or p in only]
        if not offsets:
            return
        try:
            self.c.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            # A commit racing a cooperative rebalance is refused with REBALANCE_IN_PROGRESS
            # or ILLEGAL_GENERATION, as Kafka refuses it; the offsets stay pending and go out
            # with the next commit or in the revoke callback, so nothing is processed twice
            # (asserted by the tests). Any other commit error is a failure.
            if only is None and e.args[0].code() in (KafkaError.REBALANCE_IN_PROGRESS,
                                                     KafkaError.ILLEGAL_GENERATION):
                self.retried_commits += 1
                return
            self.commit_errors.append(f"{self.name}: commit {offsets}: {e}")
            return
        for tp in offsets:
            if self.pending.get(tp.partition) == tp.offset:
                del self.pending[tp.partition]

    def step(self, timeout=0.05):
        for m in self.c.consume(num_messages=500, timeout=timeout):
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    self.errors.append(f"{self.name}: {m.error()}")
                continue
            self.processed.append((m.partition(), m.offset()))
            self.pending[m.partition()] = m.offset() + 1
        self.commit()

    def assignment(self) -> list[int]:
        return sorted(tp.partition for tp in self.c.assignment())

    def close(self):
        if not self.closed:
            self.closed = True
            self.c.close()


def pump(members, until, timeout: float, what: str, extra_state=lambda: ""):
    """Steps every open member until `until()` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            state = {m.name: m.assignment() for m in members if not m.closed}
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; assignments "
                                 f"{state} {extra_state()}; commit errors "
                                 f"{[e for m in members for e in m.commit_errors][:5]}")
        for m in members:
            if not m.closed:
                m.step()


def hold(members, condition, seconds: float, what: str):
    """Steps the members for `seconds`, failing if `condition()` stops holding."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for m in members:
            if not m.closed:
                m.step()
        state = {m.name: m.assignment() for m in members if not m.closed}
        assert condition(), f"{what} stopped holding: {state}"


def balanced(members, per_member: int, partitions: int, external=lambda: []):
    """Every member owns exactly `per_member` partitions and together they own all.
    `external()` gives the assignments of members outside this process."""
    def check():
        owned = [m.assignment() for m in members] + [list(a) for a in external()]
        flat = [p for a in owned for p in a]
        return (all(len(a) == per_member for a in owned)
                and sorted(flat) == list(range(partitions)))
    return check


def produce_round(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str):
    producer = make_producer(bootstrap)
    msgs = [dict(topic=topic, partition=p, value=f"{tag}-{p}-{i}".encode())
            for p in range(partitions) for i in range(per_partition)]
    return set(produce_all(producer, msgs))


def processed_by(members) -> Counter:
    return Counter(rec for m in members for rec in m.processed)


# ---------------------------------------------------------------------------------------------
# Sharing partitions and rebalancing.

@pytest.mark.parametrize("strategy", STRATEGIES)
def test_three_members_share_partitions_and_a_clean_leave_moves_them(broker_factory, strategy):
    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("share"), partitions=6)
    group = unique_group()
    produced = produce_round(broker.bootstrap, topic, 6, 50, "before")

    members = [Member(broker.bootstrap, group, topic, f"m{i}", strategy) for i in range(3)]
    try:
        pump(members, balanced(members, 2, 6), 60, "three members with two partitions each")
        hold(members, balanced(members, 2, 6), 1.0, "two partitions each")
        pump(members, lambda: set(processed_by(members)) >= produced, 60,
             "every record of the first round processed")

        leaving, staying = members[0], members[1:]
        gone = set(leaving.assignment())
        t0 = time.monotonic()
        leaving.close()
        pump(staying, balanced(staying, 3, 6), 60, "two members with three partitions each")
        print(f"\n[{strategy}] rebalance after a clean leave: {time.monotonic() - t0:.2f}s")
        assert gone <= {p for m in staying for p in m.assignment()}

        produced |= produce_round(broker.bootstrap, topic, 6, 50, "after")
        pump(staying, lambda: set(processed_by(members)) >= produced, 60,
             "every record of the second round processed")
        hold(staying, balanced(staying, 3, 6), 0.5, "three partitions each")

        counts = processed_by(members)
        assert set(counts) == produced
        twice = sorted(rec for rec, n in counts.items() if n > 1)
        assert twice == [], (f"{len(twice)} records processed more than once, first {twice[:10]}; "
                             f"commit errors {[e for m in members for e in m.commit_errors][:5]}")
        errors = [e for m in members for e in m.errors + m.commit_errors]
        assert errors == []
    finally:
        for m in members:
            m.close()


KILLABLE_MEMBER = r"""
import json, sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, group, topic, strategy, out_path = sys.argv[1:6]
conf = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "classic",
        "auto.offset.reset": "earliest", "enable.auto.commit": False, "client.id": "doomed",
        "session.timeout.ms": int(sys.argv[6]), "heartbeat.interval.ms": int(sys.argv[7])}
if strategy != "default":
    conf["partition.assignment.strategy"] = strategy
c = Consumer(conf)
c.subscribe([topic])
out = open(out_path, "a", buffering=1)
last = None
while True:
    done = {}
    for m in c.consume(num_messages=500, timeout=0.1):
        if m.error() is None:
            out.write(f"{m.partition()} {m.offset()}\n")
            done[m.partition()] = m.offset() + 1
    if done:
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in done.items()],
                     asynchronous=False)
        except Exception as e:
            print(json.dumps({"commit_error": str(e)}), flush=True)
    a = sorted(tp.partition for tp in c.assignment())
    if a != last:
        print(json.dumps({"assigned": a}), flush=True)
        last = a
"""


class KillableMember:
    """A consumer in a child process, so it can be SIGKILLed without a LeaveGroup."""

    def __init__(self, bootstrap, group, topic, strategy, out_path):
        self.out_path = out_path
        out_path.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", KILLABLE_MEMBER, bootstrap, group, topic, strategy,
             str(out_path), str(SESSION_TIMEOUT_MS), str(HEARTBEAT_MS)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.assigned: list[int] = []
        self.messages: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            self.messages.append(msg)
            if "assigned" in msg:
                self.assigned = msg["assigned"]

    def processed(self) -> list[tuple[int, int]]:
        text = self.out_path.read_text()
        # The child may be half-way through writing a line.
        lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        out = []
        for line in lines:
            p, o = line.split()
            out.append((int(p), int(o)))
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_killed_members_partitions_move_after_the_session_timeout(broker_factory, tmp_path,
                                                                     strategy):
    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("kill"), partitions=6)
    group = unique_group()

    doomed = KillableMember(broker.bootstrap, group, topic, strategy, tmp_path / "doomed.txt")
    members = [Member(broker.bootstrap, group, topic, f"m{i}", strategy) for i in range(2)]
    try:
        def all_processed():
            return set(processed_by(members)) | set(doomed.processed()) >= produced

        pump(members, balanced(members, 2, 6, external=lambda: [doomed.assigned]), 60,
             "three members (one in a child process) with two partitions each",
             lambda: f"child: {doomed.assigned} {doomed.messages[-3:]}")
        # Produced once the partitions are shared, so the child reads its own share.
        produced = produce_round(broker.bootstrap, topic, 6, 50, "before")
        pump(members, all_processed, 60, "every record of the first round processed")
        by_child = {p for p, _ in doomed.processed()}
        assert by_child == set(doomed.assigned), "the child did not read its own partitions"
        orphaned = set(doomed.assigned)

        doomed.kill()
        t0 = time.monotonic()
        produced |= produce_round(broker.bootstrap, topic, 6, 50, "after")
        pump(members, balanced(members, 3, 6), 60, "two members with three partitions each")
        took = time.monotonic() - t0
        print(f"\n[{strategy}] partitions of a killed member moved after {took:.2f}s "
              f"(session.timeout.ms={SESSION_TIMEOUT_MS}, heartbeat.interval.ms={HEARTBEAT_MS})")
        # The coordinator must wait for the session timeout: the member's last heartbeat was at
        # most one heartbeat interval before the kill.
        floor = (SESSION_TIMEOUT_MS - HEARTBEAT_MS) / 1000 - 0.5
        assert took >= floor, f"partitions moved {took:.2f}s after the kill, before the session timeout"
        assert took < SESSION_TIMEOUT_MS / 1000 + 20
        assert orphaned <= {p for m in members for p in m.assignment()}

        pump(members, all_processed, 60, "every record (both rounds) processed at least once")
        errors = [e for m in members for e in m.errors]
        assert errors == []
    finally:
        doomed.kill()
        for m in members:
            m.close()


# ---------------------------------------------------------------------------------------------
# kafka-python.

def test_kafka_python_group_consumer_resumes_from_commit(broker_factory):
    from kafka import KafkaConsumer, TopicPartition as KTopicPartition
    from kafka.structs import OffsetAndMetadata

    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("kpy"), partitions=1)
    group = unique_group("kpy")
    produce_round(broker.bootstrap, topic, 1, 20, "r")
    tp = KTopicPartition(topic, 0)

    def consumer():
        return KafkaConsumer(topic, group_id=group, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_poll_records=5, consumer_timeout_ms=1000)

    def take(c, n, timeout=30.0):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            assert time.monotonic() < deadline, f"got {len(got)} of {n} records: {got}"
            for records in c.poll(timeout_ms=500).values():
                got.extend(r.offset for r in records)
        return got

    first = consumer()
    try:
        got = take(first, 10)
        assert got[:10] == list(range(10))
        first.commit({tp: OffsetAndMetadata(10, "", -1)})
        assert first.committed(tp) == 10
    finally:
        first.close()

    second = consumer()
    try:
        assert second.committed(tp) == 10
        got = take(second, 10)
        assert got[:10] == list(range(10, 20)), f"the second consumer read {got}"
    finally:
        second.close()


# ---------------------------------------------------------------------------------------------
# Committed offsets survive a restart.

@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_committed_offsets_survive_a_broker_restart(broker_factory, how):
    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("durable"), partitions=3)
    group = unique_group()
    produce_round(broker.bootstrap, topic, 3, 30, "r")
    first_commit = {0: 3, 1: 3, 2: 3}
    final_commit = {0: 7, 1: 13, 2: 21}

    m = Member(broker.bootstrap, group, topic, "before")
    try:
        pump([m], lambda: m.assignment() == [0, 1, 2] and len(m.processed) > 0, 60,
             "the only member to own all three partitions")
        m.pending.clear()  # only the explicit commits below
        for offsets in (first_commit, final_commit):
            m.c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                       asynchronous=False)
        if how == "stop":
            m.close()
            assert broker.stop() == 0
        else:
            broker.kill9()  # right after the commit was acknowledged
        broker.restart()
    finally:
        m.close()

    check = Consumer(consumer_conf(broker.bootstrap, group))
    try:
        committed = check.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)
        assert {tp.partition: tp.offset for tp in committed} == final_commit
    finally:
        check.close()

    after = Member(broker.bootstrap, group, topic, "after")
    try:
        expected = {(p, o) for p, start in final_commit.items() for o in range(start, 30)}
        pump([after], lambda: set(after.processed) >= expected, 60,
             "the new member to read from the committed offsets to the end")
        firsts = {p: min(o for q, o in after.processed if q == p) for p in range(3)}
        assert firsts == final_commit, f"first offsets read after the restart: {firsts}"
        assert sorted(after.processed) == sorted(expected)
    finally:
        after.close()


@pytest.mark.single_node("restarts the one broker process that coordinates the group")
@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_members_carry_on_without_a_rebalance_across_a_broker_restart(broker_factory, how):
    """The coordinator persists each completed rebalance (Kafka's group metadata record): after
    a restart the member keeps its member id, generation and partitions, and is neither
    revoked nor told its partitions were lost; it reads what was produced after the restart."""
    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("keep"), partitions=3)
    group = unique_group()
    produce_round(broker.bootstrap, topic, 3, 5, "before")
    m = Member(broker.bootstrap, group, topic, "keeper")
    try:
        pump([m], lambda: m.assignment() == [0, 1, 2] and len(m.processed) == 15, 60,
             "the only member to own all three partitions and read the first round")
        member_id = m.c.memberid()
        if how == "stop":
            assert broker.stop() == 0
        else:
            broker.kill9()
        started = time.monotonic()
        broker.restart()
        print(f"\nbroker {how} + restart took {time.monotonic() - started:.2f} s "
              f"(session timeout {SESSION_TIMEOUT_MS} ms)")
        produce_round(broker.bootstrap, topic, 3, 5, "after")
        pump([m], lambda: len(m.processed) == 30, 60, "the member to read the second round")
        # Longer than a session: a member the restarted coordinator did not know would have
        # been told so by its first heartbeat and rejoined by now.
        hold([m], lambda: m.assignment() == [0, 1, 2], SESSION_TIMEOUT_MS / 1000 + 2,
             "the member owning all three partitions")
        assert m.c.memberid() == member_id, "the member rejoined under a new member id"
        assert (m.revocations, m.losses) == (0, 0), \
            f"revoked {m.revocations} times, lost partitions {m.losses} times"
        assert not m.errors and not m.commit_errors, (m.errors, m.commit_errors)
        assert len(set(m.processed)) == 30, "a record was read twice or not at all"
    finally:
        m.close()


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_a_deleted_group_stays_deleted_after_a_restart(broker_factory, how):
    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("gone"), partitions=1)
    produce_round(broker.bootstrap, topic, 1, 10, "r")
    kept, deleted = unique_group("kept"), unique_group("deleted")
    for group in (kept, deleted):
        c = Consumer(consumer_conf(broker.bootstrap, group))
        try:
            c.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
        finally:
            c.close()
    assert cli_group(broker.bootstrap, "delete", deleted).stdout == f"deleted {deleted}\n"
    assert set(cli_list(broker.bootstrap)) >= {kept} and deleted not in cli_list(broker.bootstrap)

    if how == "stop":
        assert broker.stop() == 0
    else:
        broker.kill9()
    broker.restart()

    listed = cli_list(broker.bootstrap)
    assert kept in listed
    assert deleted not in listed, f"deleted group {deleted} is back after a restart: {listed}"
    p = cli_group(broker.bootstrap, "describe", deleted, check=False)
    assert (p.returncode, p.stderr) == (1, f"weir: group {deleted} does not exist\n")
    assert cli_offsets(broker.bootstrap, kept)[0]["CURRENT-OFFSET"] == "4"


# ---------------------------------------------------------------------------------------------
# The weir CLI.

def cli_group(bootstrap, *args, check=True):
    return run_weir("group", *args, "-b", bootstrap, check=check)


def table_rows(lines: list[str]) -> list[dict]:
    """A header line and rows, columns separated by two or more spaces."""
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip(), maxsplit=len(header) - 1)))
            for line in lines[1:] if line.strip()]


def parse_describe(out: str) -> dict:
    """{'summary': {KEY: value}, 'members': [row], 'offsets': [row]}"""
    blocks = [b.splitlines() for b in out.strip().split("\n\n")]
    summary = {}
    for line in blocks[0]:
        key, _, value = line.strip().partition(" ")
        summary[key] = value.strip()
    sections = {}
    for b in blocks[1:]:
        sections[b[0].strip()] = table_rows(b[1:]) if len(b) > 1 else []
    return {"summary": summary, "members": sections["MEMBERS"], "offsets": sections["OFFSETS"]}


def cli_offsets(bootstrap, group) -> dict[int, dict]:
    return {int(r["PARTITION"]): r
            for r in parse_describe(cli_group(bootstrap, "describe", group).stdout)["offsets"]}


def cli_list(bootstrap) -> dict[str, dict]:
    return {r["GROUP"]: r for r in table_rows(cli_group(bootstrap, "list").stdout.splitlines())}


BASE_TS = 1_700_000_000_000


def group_with_lag(broker, topic, group):
    """Two partitions, 10 records each (timestamps BASE_TS + i s); one member that committed
    p0 at 4 and p1 at 10; then 5 more records on p0 and 3 on p1, so the lag is 11 and 3."""
    create_topic(broker.bootstrap, topic, partitions=2)
    producer = make_producer(broker.bootstrap)
    produce_all(producer, [dict(topic=topic, partition=p, value=f"{p}-{i}".encode(),
                                timestamp=BASE_TS + i * 1000)
                           for p in range(2) for i in range(10)])
    m = Member(broker.bootstrap, group, topic, "lagging-client")
    pump([m], lambda: m.assignment() == [0, 1] and len(m.processed) >= 20, 60,
         "one member to own and read both partitions")
    m.pending.clear()
    m.c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 10)],
               asynchronous=False)
    produce_all(producer, [dict(topic=topic, partition=0, value=b"late",
                                timestamp=BASE_TS + (10 + i) * 1000) for i in range(5)]
                + [dict(topic=topic, partition=1, value=b"late",
                        timestamp=BASE_TS + (10 + i) * 1000) for i in range(3)])
    return m


@pytest.mark.cli
def test_cli_describe_and_list_show_members_and_lag(broker_factory):
    broker = broker_factory(settings=FAST)
    topic, group = unique_topic("lag"), unique_group("lag")
    m = group_with_lag(broker, topic, group)
    try:
        d = parse_describe(cli_group(broker.bootstrap, "describe", group).stdout)
        assert d["summary"] == {"GROUP": group, "STATE": "Stable", "PROTOCOL-TYPE": "consumer",
                                "PROTOCOL": "range", "MEMBERS": "1"}
        member_id = m.c.memberid()
        assert d["members"] == [{"MEMBER-ID": member_id, "CLIENT-ID": "lagging-client",
                                 "HOST": d["members"][0]["HOST"],
                                 "PARTITIONS": f"{topic}:0,1"}]
        assert "127.0.0.1" in d["members"][0]["HOST"]
        assert d["offsets"] == [
            {"TOPIC": topic, "PARTITION": "0", "CURRENT-OFFSET": "4", "LOG-END-OFFSET": "15",
             "LAG": "11", "MEMBER": member_id},
            {"TOPIC": topic, "PARTITION": "1", "CURRENT-OFFSET": "10", "LOG-END-OFFSET": "13",
             "LAG": "3", "MEMBER": member_id},
        ]
        listed = cli_list(broker.bootstrap)
        assert listed[group] == {"GROUP": group, "STATE": "Stable", "PROTOCOL-TYPE": "consumer",
                                 "PROTOCOL": "range", "MEMBERS": "1"}
    finally:
        m.close()

    listed = cli_list(broker.bootstrap)
    assert listed[group] == {"GROUP": group, "STATE": "Empty", "PROTOCOL-TYPE": "consumer",
                             "PROTOCOL": "-", "MEMBERS": "0"}
    d = parse_describe(cli_group(broker.bootstrap, "describe", group).stdout)
    assert d["summary"]["STATE"] == "Empty"
    assert d["members"] == []
    assert [(r["CURRENT-OFFSET"], r["LAG"], r["MEMBER"]) for r in d["offsets"]] == [
        ("4", "11", "-"), ("10", "3", "-")]

    p = cli_group(broker.bootstrap, "describe", "no-such-group", check=False)
    assert p.returncode == 1
    assert p.stderr == "weir: group no-such-group does not exist\n"


@pytest.mark.cli
def test_cli_reset_offsets(broker_factory):
    broker = broker_factory(settings=FAST)
    topic, group = unique_topic("reset"), unique_group("reset")
    m = group_with_lag(broker, topic, group)
    try:
        p = cli_group(broker.bootstrap, "reset-offsets", group, "--topic", topic,
                      "--to-earliest", check=False)
        assert p.returncode == 1
        assert p.stderr == (f"weir: group {group} is active (Stable, 1 member); "
                            "stop its consumers first\n")
        assert p.stdout == ""
    finally:
        m.close()
    offsets = cli_offsets(broker.bootstrap, group)
    assert (offsets[0]["CURRENT-OFFSET"], offsets[1]["CURRENT-OFFSET"]) == ("4", "10")

    def reset(*args):
        out = cli_group(broker.bootstrap, "reset-offsets", group, "--topic", topic, *args)
        return {int(r["PARTITION"]): (r["PREVIOUS-OFFSET"], r["NEW-OFFSET"])
                for r in table_rows(out.stdout.splitlines())}

    def current():
        o = cli_offsets(broker.bootstrap, group)
        return {p: o[p]["CURRENT-OFFSET"] for p in sorted(o)}

    assert reset("--to-earliest", "--dry-run") == {0: ("4", "0"), 1: ("10", "0")}
    assert current() == {0: "4", 1: "10"}
    assert reset("--to-latest") == {0: ("4", "15"), 1: ("10", "13")}
    assert current() == {0: "15", 1: "13"}
    assert reset("--to-offset", "7", "--partition", "0") == {0: ("15", "7")}
    assert current() == {0: "7", 1: "13"}
    assert reset("--to-offset", "100", "--partition", "1") == {1: ("13", "13")}
    assert reset("--to-timestamp", str(BASE_TS + 5000)) == {0: ("7", "5"), 1: ("13", "5")}
    assert reset("--to-timestamp", str(BASE_TS + 3_600_000)) == {0: ("5", "15"), 1: ("5", "13")}
    assert reset("--to-earliest") == {0: ("15", "0"), 1: ("13", "0")}
    offsets = cli_offsets(broker.bootstrap, group)
    assert [(offsets[p]["CURRENT-OFFSET"], offsets[p]["LAG"]) for p in (0, 1)] == [
        ("0", "15"), ("0", "13")]

    p = cli_group(broker.bootstrap, "reset-offsets", group, "--topic", topic, "--partition", "2",
                  "--to-earliest", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("weir: ") and "no partition 2" in p.stderr
    assert len(p.stderr.splitlines()) == 1

    # A consumer in the group now starts from the beginning.
    again = Member(broker.bootstrap, group, topic, "again")
    try:
        pump([again], lambda: len(again.processed) >= 28, 60, "the group to reread everything")
        firsts = {p: min(o for q, o in again.processed if q == p) for p in (0, 1)}
        assert firsts == {0: 0, 1: 0}
        assert sorted(again.processed) == [(0, o) for o in range(15)] + [(1, o) for o in range(13)]
    finally:
        again.close()


@pytest.mark.cli
def test_cli_delete_group(broker_factory):
    broker = broker_factory(settings=FAST)
    topic, group = unique_topic("del"), unique_group("del")
    m = group_with_lag(broker, topic, group)
    try:
        p = cli_group(broker.bootstrap, "delete", group, check=False)
        assert p.returncode == 1
        assert p.stderr.startswith(f'weir: delete group "{group}": it has members')
        assert "NON_EMPTY_GROUP" in p.stderr
        assert group in cli_list(broker.bootstrap)
    finally:
        m.close()

    p = cli_group(broker.bootstrap, "delete", group)
    assert p.stdout == f"deleted {group}\n"
    assert group not in cli_list(broker.bootstrap)
    p = cli_group(broker.bootstrap, "describe", group, check=False)
    assert (p.returncode, p.stderr) == (1, f"weir: group {group} does not exist\n")

    p = cli_group(broker.bootstrap, "delete", group, check=False)
    assert p.returncode == 1
    assert "GROUP_ID_NOT_FOUND" in p.stderr

    # The offsets went with the group: a new member starts from auto.offset.reset (earliest).
    again = Member(broker.bootstrap, group, topic, "again")
    try:
        pump([again], lambda: len(again.processed) >= 28, 60, "the group to reread everything")
        assert {p: min(o for q, o in again.processed if q == p) for p in (0, 1)} == {0: 0, 1: 0}
    finally:
        again.close()


# ---------------------------------------------------------------------------------------------
# Timings (printed; bounds are generous).

def test_timings_with_default_settings(broker):
    """Broker and consumers with default settings (including the initial rebalance delay)."""
    topic = create_topic(broker.bootstrap, unique_topic("timing"), partitions=6)
    produce_round(broker.bootstrap, topic, 6, 10, "r")

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_group("first"),
                  "auto.offset.reset": "earliest"})
    try:
        t0 = time.monotonic()
        c.subscribe([topic])
        first = None
        while first is None and time.monotonic() - t0 < 30:
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                first = time.monotonic() - t0
        print(f"\nsubscribe() to first record, default settings: "
              f"{first if first is None else f'{first:.2f}'}s")
        assert first is not None and first < 10
    finally:
        c.close()

    group = unique_group("rebalance")
    members = [Member(broker.bootstrap, group, topic, f"m{i}", **{
        "session.timeout.ms": 45000, "heartbeat.interval.ms": 3000}) for i in range(3)]
    try:
        t0 = time.monotonic()
        pump(members, balanced(members, 2, 6), 60, "three members with two partitions each")
        print(f"three members joined and balanced in {time.monotonic() - t0:.2f}s")
        t0 = time.monotonic()
        members[0].close()
        pump(members[1:], balanced(members[1:], 3, 6), 60, "two members with three each")
        took = time.monotonic() - t0
        print(f"rebalance after one of three members left (default heartbeat 3 s): {took:.2f}s")
        assert took < 15
    finally:
        for m in members:
            m.close()


# ---------------------------------------------------------------------------------------------
# OffsetFetch v8+: several groups in one request (no Python client sends this form yet).

API_OFFSET_FETCH = 9


def _compact_array(items: list[bytes]) -> bytes:
    return kwire.uvarint(len(items) + 1) + b"".join(items)


def _read_compact_string(r):
    n = r.uvarint()
    if n == 0:
        return None
    s = r.data[r.pos:r.pos + n - 1].decode()
    r.pos += n - 1
    return s


def _skip_tags(r):
    for _ in range(r.uvarint()):
        r.uvarint()
        r.pos += r.uvarint()


def offset_fetch_multi(bootstrap: str, version: int, groups: list[tuple[str, dict | None]]):
    """OffsetFetch v8/v9 for several groups at once. groups: [(group, {topic: [partition]} or
    None for everything committed)]. Returns {group: (error, {(topic, partition): (offset,
    error)})}."""
    body_groups = []
    for group, topics in groups:
        g = kwire.compact_string(group)
        if version >= 9:
            g += kwire.compact_string(None) + kwire.i32(-1)  # member id, member epoch
        if topics is None:
            g += kwire.uvarint(0)
        else:
            g += _compact_array([kwire.compact_string(t) + _compact_array(
                [kwire.i32(p) for p in ps]) + kwire.uvarint(0) for t, ps in topics.items()])
        body_groups.append(g + kwire.uvarint(0))
    body = _compact_array(body_groups) + kwire.i8(0) + kwire.uvarint(0)  # require_stable, tags
    with kwire.Conn(bootstrap) as c:
        r = c.request(kwire.request_header_v2(API_OFFSET_FETCH, version, 42), body)
    assert r.i32() == 42
    _skip_tags(r)  # response header v1
    r.i32()  # throttle
    out = {}
    for _ in range(r.uvarint() - 1):
        group = _read_compact_string(r)
        parts = {}
        for _ in range(r.uvarint() - 1):
            topic = _read_compact_string(r)
            for _ in range(r.uvarint() - 1):
                p, offset, _epoch = r.i32(), r.i64(), r.i32()
                _read_compact_string(r)  # metadata
                parts[(topic, p)] = (offset, r.i16())
                _skip_tags(r)
            _skip_tags(r)
        out[group] = (r.i16(), parts)
        _skip_tags(r)
    _skip_tags(r)
    assert r.remaining() == 0
    return out


@pytest.mark.single_node("one raw request for several groups needs one coordinator of them all; "
                         "in a cluster the others answer NOT_COORDINATOR, as Kafka's do")
@pytest.mark.parametrize("version", [8, 9])
def test_offset_fetch_for_several_groups_in_one_request(broker_factory, version):
    broker = broker_factory(settings=FAST)
    topic = create_topic(broker.bootstrap, unique_topic("multi"), partitions=2)
    produce_round(broker.bootstrap, topic, 2, 10, "r")
    ga, gb, gc = unique_group("a"), unique_group("b"), unique_group("none")
    for group, offsets in ((ga, {0: 5, 1: 6}), (gb, {0: 2})):
        # A consumer that never joins commits as Kafka's admin tools do (generation -1).
        c = Consumer(consumer_conf(broker.bootstrap, group))
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                     asynchronous=False)
        finally:
            c.close()

    got = offset_fetch_multi(broker.bootstrap, version, [
        (ga, None), (gb, {topic: [0, 1]}), (gc, {topic: [0]})])
    assert got == {
        ga: (0, {(topic, 0): (5, 0), (topic, 1): (6, 0)}),
        gb: (0, {(topic, 0): (2, 0), (topic, 1): (-1, 0)}),
        gc: (0, {(topic, 0): (-1, 0)}),
    }
