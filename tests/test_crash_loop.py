"""Crash-consistency loop: mixed load, kill -9 at a random moment, verify, restart, check.

Each iteration starts the broker on the same data directory, runs a mixed load (acks=all
producers, some idempotent; a consumer group committing offsets; a thread creating and
deleting topics; a topic with tiny segments and retention.bytes so retention deletes
segments), kills the broker with SIGKILL after a random delay, runs the offline verifier on
the data directory (a torn tail of an active segment is allowed there, nothing else is), then
restarts and checks what was acknowledged:

- every acknowledged record is at its acknowledged (partition, offset) with its key and value,
  unless retention moved the log start past it (and only the log start may move);
- no offset ever holds two different records across restarts, offsets are contiguous;
- log start and high watermark never go backwards; the high watermark covers every ack;
- acknowledged group commits are never lost and committed offsets never go backwards;
- topics whose creation was acknowledged exist, those whose deletion was acknowledged don't;
- in a compacted topic (a small key space, tiny segments, a fast cleaner), which the cleaner
  rewrites while the broker is killed: offsets only ascend (gaps are compaction's), no offset
  ever holds two different records, and the latest acknowledged value of every key is there
  (at its offset, or superseded by a later write of the same key).

Some iterations stop the broker cleanly instead and then require a strict verify. The test
ends with a clean stop, a strict verify and a full read of every topic.

CI runs a few iterations. The long run:

    WEIR_CRASH_ITERATIONS=200 pytest tests/test_crash_loop.py -s

WEIR_CRASH_SEED=N replays a run (the seed is printed at the start and on failure).
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import (create_topic, make_consumer, make_producer,
                      run_weir, topic_partition_counts)

ITERATIONS = int(os.environ.get("WEIR_CRASH_ITERATIONS", "7"))
MAIN_PARTITIONS = 3
# A new main topic every this many iterations, so each check reads a bounded amount; older
# ones keep their watermark checks and get a full read at the end.
ROTATE_EVERY = 10
SETTINGS = {
    "group.initial.rebalance.delay.ms": 0,
    "log.retention.check.interval.ms": 100,
    # Dense indexes, so index entries are checked all over the segments.
    "log.index.interval.bytes": 512,
    "log.segment.bytes": 64 * 1024,
    "log.cleaner.backoff.ms": 50,
    "log.cleaner.dedupe.buffer.size": 1024 * 1024,
}
TINY = {"segment.bytes": 2048, "retention.bytes": 8192, "retention.ms": -1}
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": 4096,
             "min.cleanable.dirty.ratio": 0.01, "delete.retention.ms": 60000}
COMPACTED_KEYS = 50
GROUP = "crash-group"
# The clients see the broker die over and over; their connection-refused logs are noise.
QUIET = {"log_level": 0}


class Ledger:
    """Everything the broker acknowledged, across all iterations."""

    def __init__(self):
        self.lock = threading.Lock()
        # (topic, partition, offset) -> (key, value)
        self.acked: dict[tuple[str, int, int], tuple[bytes, bytes]] = {}
        # Everything ever read back after a restart: an offset never changes its record.
        self.seen: dict[tuple[str, int, int], tuple[bytes, bytes]] = {}
        self.low: dict[tuple[str, int], int] = {}
        self.high: dict[tuple[str, int], int] = {}
        # (topic, partition) -> highest acknowledged committed offset of GROUP
        self.commits: dict[tuple[str, int], int] = {}
        self.fetched_commits: dict[tuple[str, int], int] = {}
        self.topics_created: dict[str, int] = {}
        self.topics_deleted: set[str] = set()
        # Deletions sent whose answer never came (the broker died): either outcome is legal.
        self.topics_delete_unknown: set[str] = set()
        self.delivery_errors = 0

    def ack(self, topic, partition, offset, key, value):
        with self.lock:
            k = (topic, partition, offset)
            prev = self.acked.get(k)
            assert prev is None or prev == (key, value), \
                f"offset {k} acknowledged for two records: {prev} and {(key, value)}"
            self.acked[k] = (key, value)


class ProducerThread(threading.Thread):
    def __init__(self, bootstrap, ledger, name, targets, idempotent, rng_seed):
        super().__init__(daemon=True, name=name)
        self.ledger = ledger
        self.targets = targets  # [(topic, partitions)]
        self.rng = random.Random(rng_seed)
        conf = {"linger.ms": 2, "message.timeout.ms": 4000, "request.timeout.ms": 3000,
                "reconnect.backoff.max.ms": 200, "enable.idempotence": idempotent}
        if not idempotent:
            conf["retries"] = 0  # a plain retry may duplicate; that is not what we test
        self.producer = make_producer(bootstrap, **conf, **QUIET)
        self.stop_flag = threading.Event()
        self.sent = 0

    def _cb(self, err, msg):
        if err is None:
            self.ledger.ack(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
        else:
            with self.ledger.lock:
                self.ledger.delivery_errors += 1

    def key(self, topic, n):
        if topic == "compacted":
            return f"ck{self.rng.randrange(COMPACTED_KEYS)}".encode()
        return f"{self.name}-{n}".encode()

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            topic, parts = self.rng.choice(self.targets)
            key = self.key(topic, n)
            value = key + b":" + bytes([97 + n % 26]) * self.rng.randrange(10, 300)
            try:
                self.producer.produce(topic, key=key, value=value,
                                      partition=self.rng.randrange(parts), on_delivery=self._cb)
                n += 1
            except BufferError:
                pass
            except KafkaException:
                break
            self.producer.poll(0.001 if n % 20 else 0.005)
        self.sent = n

    def finish(self):
        self.stop_flag.set()
        self.join(10)
        # The broker is gone: what was never answered is dropped so flush returns promptly.
        self.producer.purge(in_queue=True, in_flight=True, blocking=False)
        self.producer.flush(10)


class GroupThread(threading.Thread):
    """A group member consuming the main topic and committing synchronously."""

    def __init__(self, bootstrap, ledger, topic):
        super().__init__(daemon=True, name="group")
        self.ledger = ledger
        self.topic = topic
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500, "socket.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 200, **QUIET,
        })
        self.stop_flag = threading.Event()
        self.commits_ok = 0

    def run(self):
        self.consumer.subscribe([self.topic])
        since = 0
        while not self.stop_flag.is_set():
            try:
                msgs = self.consumer.consume(num_messages=200, timeout=0.1)
            except KafkaException:
                continue
            since += sum(1 for m in msgs if m.error() is None)
            if since >= 50:
                since = 0
                try:
                    res = self.consumer.commit(asynchronous=False)
                except KafkaException:
                    continue
                with self.ledger.lock:
                    for tp in res or []:
                        if tp.error is None and tp.offset >= 0:
                            k = (tp.topic, tp.partition)
                            self.ledger.commits[k] = max(self.ledger.commits.get(k, -1),
                                                         tp.offset)
                            self.commits_ok += 1

    def finish(self):
        self.stop_flag.set()
        self.join(10)
        # close() would try to leave the group on a dead broker; it happens in the background.
        threading.Thread(target=self.consumer.close, daemon=True).start()


class ChurnThread(threading.Thread):
    """Creates and deletes small topics, recording which changes were acknowledged."""

    def __init__(self, bootstrap, ledger, iteration, rng_seed):
        super().__init__(daemon=True, name="churn")
        self.admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
        self.ledger = ledger
        self.iteration = iteration
        self.rng = random.Random(rng_seed)
        self.stop_flag = threading.Event()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            with self.ledger.lock:
                live = sorted(set(self.ledger.topics_created) - self.ledger.topics_deleted)
            try:
                if live and (len(live) > 6 or self.rng.random() < 0.4):
                    name = self.rng.choice(live)
                    with self.ledger.lock:
                        self.ledger.topics_delete_unknown.add(name)
                    self.admin.delete_topics([name], operation_timeout=3,
                                             request_timeout=3)[name].result(4)
                    with self.ledger.lock:
                        self.ledger.topics_deleted.add(name)
                else:
                    name = f"churn-{self.iteration}-{i}"
                    parts = self.rng.randrange(1, 4)
                    i += 1
                    self.admin.create_topics([NewTopic(name, parts, 1)],
                                             request_timeout=3)[name].result(4)
                    with self.ledger.lock:
                        self.ledger.topics_created[name] = parts
            except Exception:  # noqa: BLE001 - the broker may die at any moment
                time.sleep(0.05)
            time.sleep(self.rng.uniform(0.01, 0.1))

    def finish(self):
        self.stop_flag.set()
        self.join(10)


def read_partition(bootstrap, topic, partition, lo, hi, timeout=60.0):
    """[(offset, key, value)] of [lo, hi)."""
    if hi <= lo:
        return []
    c = make_consumer(bootstrap, **QUIET)
    try:
        c.assign([TopicPartition(topic, partition, lo)])
        out = []
        deadline = time.monotonic() + timeout
        while not out or out[-1][0] < hi - 1:
            assert time.monotonic() < deadline, \
                f"timed out reading {topic}/{partition} [{lo}, {hi}); last {out[-1:] }"
            for m in c.consume(num_messages=10000, timeout=0.5):
                assert m.error() is None, f"consumer error on {topic}/{partition}: {m.error()}"
                if m.offset() < hi:
                    out.append((m.offset(), m.key(), m.value()))
        return out
    finally:
        c.close()


def verify_offline(data_dir, strict: bool, context: str):
    args = ["debug", "verify", "--data-dir", str(data_dir), "--verbose"]
    if strict:
        args.append("--strict")
    p = run_weir(*args, check=False, timeout=120)
    assert p.returncode == 0, (f"{context}: weir debug verify{' --strict' if strict else ''} "
                               f"found inconsistencies\n{p.stdout}\n{p.stderr}")
    return p.stdout


def check_partition(bootstrap, ledger: Ledger, topic, partition, context, full=True,
                    retention=False):
    """Watermarks and (if `full`) every record of one partition against the ledger. Only with
    `retention` may the log start move."""
    c = make_consumer(bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10,
                                         cached=False)
    finally:
        c.close()
    k = (topic, partition)
    with ledger.lock:
        acked = {off: kv for (t, p, off), kv in ledger.acked.items() if (t, p) == k}
        prev_lo, prev_hi = ledger.low.get(k, 0), ledger.high.get(k, 0)
    assert lo >= prev_lo, f"{context}: {k} log start went back from {prev_lo} to {lo}"
    assert retention or lo == 0, f"{context}: {k} has no retention but its log start is {lo}"
    assert hi >= prev_hi, f"{context}: {k} high watermark went back from {prev_hi} to {hi}"
    if acked:
        top = max(acked)
        assert hi > top, f"{context}: {k} high watermark {hi} but offset {top} was acknowledged"
    ledger.low[k], ledger.high[k] = lo, hi
    if not full:
        return 0
    records = read_partition(bootstrap, topic, partition, lo, hi)
    offsets = [r[0] for r in records]
    assert offsets == list(range(lo, hi)), \
        f"{context}: {k} offsets not contiguous in [{lo}, {hi}): first gap near " \
        f"{next((a, b) for a, b in zip(offsets, range(lo, hi)) if a != b) if offsets else None}"
    got = {off: (key, value) for off, key, value in records}
    with ledger.lock:
        for off, kv in got.items():
            before = ledger.seen.setdefault((topic, partition, off), kv)
            assert before == kv, \
                f"{context}: {k} offset {off} held {before} and now holds {kv}"
    lost = [(off, kv, got.get(off)) for off, kv in sorted(acked.items())
            if off >= lo and got.get(off) != kv]
    assert not lost, (f"{context}: {len(lost)} acknowledged records of {k} missing or changed "
                      f"(log [{lo}, {hi})); first (offset, acked, found): {lost[:3]}")
    return len(records)


def read_to_end(bootstrap, topic, partition, timeout=60.0):
    """[(offset, key, value)] from the log start to the end (compaction leaves gaps, so the
    end is the consumer's end-of-partition event, not an offset)."""
    c = make_consumer(bootstrap, **{"enable.partition.eof": True, **QUIET})
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"timed out reading {topic}/{partition}"
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    assert m.error().code() == KafkaError._PARTITION_EOF, \
                        f"consumer error on {topic}/{partition}: {m.error()}"
                    return out
                out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()


def check_compacted(bootstrap, ledger: Ledger, topic, context):
    """The compacted partition against the ledger: acknowledged records may be superseded
    by a newer value of their key, but the latest acknowledged value per key is there."""
    c = make_consumer(bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        c.close()
    k = (topic, 0)
    with ledger.lock:
        acked = {off: kv for (t, p, off), kv in ledger.acked.items() if (t, p) == k}
        prev_hi = ledger.high.get(k, 0)
    assert lo == 0, f"{context}: compacted {k} log start moved to {lo}"
    assert hi >= prev_hi, f"{context}: {k} high watermark went back from {prev_hi} to {hi}"
    if acked:
        assert hi > max(acked), f"{context}: {k} high watermark {hi} below an acknowledged offset"
    ledger.high[k] = hi
    records = read_to_end(bootstrap, topic, 0)
    offsets = [r[0] for r in records]
    assert offsets == sorted(set(offsets)), f"{context}: {k} offsets not strictly ascending"
    latest_read: dict[bytes, int] = {}
    with ledger.lock:
        for off, key, value in records:
            before = ledger.seen.setdefault((topic, 0, off), (key, value))
            assert before == (key, value), \
                f"{context}: {k} offset {off} held {before} and now holds {(key, value)}"
            assert off not in acked or acked[off] == (key, value), \
                f"{context}: {k} offset {off} acknowledged as {acked[off]} but holds {(key, value)}"
            latest_read[key] = off
    latest_acked: dict[bytes, int] = {}
    for off, (key, _) in acked.items():
        latest_acked[key] = max(off, latest_acked.get(key, -1))
    lost = [(key, off, latest_read.get(key)) for key, off in sorted(latest_acked.items())
            if latest_read.get(key, -1) < off]
    assert not lost, (f"{context}: {k} lost the latest acknowledged value of {len(lost)} keys; "
                      f"first (key, acked offset, latest offset read): {lost[:3]}")
    return len(records)


def check_commits(bootstrap, ledger: Ledger, context):
    with ledger.lock:
        wanted = dict(ledger.commits)
    if not wanted:
        return
    c = make_consumer(bootstrap, **{"group.id": GROUP})
    try:
        tps = c.committed([TopicPartition(t, p) for t, p in wanted], timeout=15)
    finally:
        c.close()
    for tp in tps:
        k = (tp.topic, tp.partition)
        assert tp.error is None, f"{context}: OffsetFetch {k}: {tp.error}"
        assert tp.offset >= wanted[k], \
            f"{context}: committed offset of {k} is {tp.offset}, but {wanted[k]} was acknowledged"
        prev = ledger.fetched_commits.get(k, -1)
        assert tp.offset >= prev, f"{context}: committed offset of {k} went back {prev} -> {tp.offset}"
        ledger.fetched_commits[k] = tp.offset
        hi = ledger.high.get(k)
        assert hi is None or tp.offset <= hi, \
            f"{context}: committed offset {tp.offset} of {k} is beyond the high watermark {hi}"


def check_topics(bootstrap, ledger: Ledger, context):
    counts = topic_partition_counts(bootstrap)
    with ledger.lock:
        created, deleted = dict(ledger.topics_created), set(ledger.topics_deleted)
        unknown = set(ledger.topics_delete_unknown) - deleted
    for name, parts in created.items():
        if name in deleted:
            assert name not in counts, f"{context}: topic {name} was deleted but is back"
        elif name in unknown:
            # A deletion was sent but not answered: it may or may not have happened. Stop
            # claiming anything about the topic, and stop the churn thread deleting it again.
            if name not in counts:
                with ledger.lock:
                    ledger.topics_deleted.add(name)
        else:
            assert counts.get(name) == parts, \
                f"{context}: topic {name} was created with {parts} partitions; now {counts.get(name)}"


def check_all(broker, ledger, mains, tiny, context, full_mains=None):
    full_mains = mains if full_mains is None else full_mains
    n = 0
    for topic in mains:
        for p in range(MAIN_PARTITIONS):
            n += check_partition(broker.bootstrap, ledger, topic, p, context,
                                 full=topic in full_mains)
    for p in range(2):
        n += check_partition(broker.bootstrap, ledger, tiny, p, context, retention=True)
    n += check_compacted(broker.bootstrap, ledger, "compacted", context)
    check_commits(broker.bootstrap, ledger, context)
    check_topics(broker.bootstrap, ledger, context)
    return n


# pytest.ini's 300 s suits the CI variant; the long run gets time per iteration.
@pytest.mark.timeout(max(300, 30 * ITERATIONS))
def test_crash_loop(broker_factory, tmp_path):
    seed = int(os.environ.get("WEIR_CRASH_SEED", random.randrange(1 << 32)))
    print(f"\ncrash loop: {ITERATIONS} iterations, WEIR_CRASH_SEED={seed}")
    rng = random.Random(seed)
    ledger = Ledger()
    data = tmp_path / "data"
    b = broker_factory(data_dir=data, settings=SETTINGS)
    tiny = create_topic(b.bootstrap, "tiny", 2, config=TINY)
    create_topic(b.bootstrap, "compacted", 1, config=COMPACTED)
    mains: list[str] = []
    kills = cleans = tails = 0
    started = time.monotonic()
    try:
        for it in range(ITERATIONS):
            context = f"iteration {it} (WEIR_CRASH_SEED={seed})"
            main = f"main-{it // ROTATE_EVERY}"
            if main not in mains:
                create_topic(b.bootstrap, main, MAIN_PARTITIONS)
                mains.append(main)
            producers = [
                ProducerThread(b.bootstrap, ledger, f"p{i}-{it}",
                               [(main, MAIN_PARTITIONS), (tiny, 2)] if i == 0
                               else [(main, MAIN_PARTITIONS), ("compacted", 1)] if i == 1
                               else [(main, MAIN_PARTITIONS)], idempotent=i % 2 == 1,
                               rng_seed=rng.randrange(1 << 32))
                for i in range(3)
            ]
            group = GroupThread(b.bootstrap, ledger, main)
            churn = ChurnThread(b.bootstrap, ledger, it, rng.randrange(1 << 32))
            threads = [*producers, group, churn]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 2.5))
            clean = rng.random() < 0.2
            if clean:
                for t in threads:
                    t.stop_flag.set()
                code = b.stop()
                assert code == 0, f"{context}: clean stop exited {code}\n{b.log_tail()}"
                cleans += 1
            else:
                b.kill9()
                kills += 1
            for t in threads:
                t.finish()
            out = verify_offline(data, strict=clean, context=context)
            tails += sum(line.startswith("TAIL") for line in out.splitlines())
            b.start()
            n = check_all(b, ledger, mains, tiny, context, full_mains=[main])
            print(f"  iteration {it}: {'clean stop' if clean else 'kill -9'}; "
                  f"acked so far {len(ledger.acked)}, read {n}, commits acked "
                  f"{len(ledger.commits)} partitions, topics created "
                  f"{len(ledger.topics_created)} deleted {len(ledger.topics_deleted)}, "
                  f"delivery errors {ledger.delivery_errors}")
        # Finally: a clean stop must leave a directory a strict verify accepts, and everything
        # acknowledged in every topic is still there.
        assert b.stop() == 0, f"final clean stop failed\n{b.log_tail()}"
        verify_offline(data, strict=True, context="after the final clean stop")
        b.start()
        check_all(b, ledger, mains, tiny, "final check")
        assert len(ledger.acked) > 100 * ITERATIONS // 2, \
            f"only {len(ledger.acked)} records acknowledged in {ITERATIONS} iterations"
        print(f"crash loop survived {ITERATIONS} iterations ({kills} kill -9, {cleans} clean "
              f"stops, {tails} unclean tails seen) in {time.monotonic() - started:.0f}s; "
              f"{len(ledger.acked)} acknowledged records checked")
    except BaseException:
        print(f"\ncrash loop FAILED with WEIR_CRASH_SEED={seed}")
        raise
