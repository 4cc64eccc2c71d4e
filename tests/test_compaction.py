"""Log compaction with real clients: the latest value of every key survives, in offset order.

A compacted topic with small segments takes 100,000 updates over 1,000 keys from a plain
producer, with tombstones, interleaved with transactions of a transactional producer, some
committed and some aborted. With a fast cleaner, a read_committed consumer from the beginning
then sees exactly the latest committed value of each live key, each key once below the active
segment, nothing of an aborted transaction. Then the broker is killed with SIGKILL while the
(throttled) cleaner rewrites the log, the data directory is verified offline, and after a
restart the same holds.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from conftest import OFFSET_BEGINNING, create_topic, run_weir, unique_topic

KEYS = 1000
UPDATES = 100_000
TOMBSTONE_EVERY = 23
CLEANER = {
    "log.cleaner.backoff.ms": 100,
    "log.cleaner.dedupe.buffer.size": 4 * 1024 * 1024,
    "log.cleaner.threads": 1,
}
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": 16 * 1024,
    "min.cleanable.dirty.ratio": 0.01,
    "delete.retention.ms": 100,
}


class Model:
    """What the log must hold: per key, the committed write with the highest offset."""

    def __init__(self):
        self.latest: dict[bytes, tuple[int, bytes | None]] = {}
        # key -> offsets of its committed writes
        self.history: dict[bytes, list[int]] = {}
        self.aborted_values: set[bytes] = set()
        self.committed_values: set[bytes] = set()

    def committed(self, offset: int, key: bytes, value: bytes | None):
        if value is not None:
            self.committed_values.add(value)
        self.history.setdefault(key, []).append(offset)
        prev = self.latest.get(key)
        if prev is None or prev[0] < offset:
            self.latest[key] = (offset, value)

    def live(self) -> dict[bytes, bytes]:
        return {k: v for k, (_, v) in self.latest.items() if v is not None}


def produce_round(bootstrap: str, topic: str, model: Model, rng: random.Random, round_no: int,
                  updates: int, compression: str = "none"):
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                      "enable.idempotence": True, "compression.type": compression})
    txn = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"compaction-{topic}",
                    "linger.ms": 5, "compression.type": compression})
    txn.init_transactions(30)
    pending: list = []

    def report(err, msg):
        assert err is None, err
        pending.append((msg.offset(), msg.key(), msg.value()))

    txn_pending: list = []

    def txn_report(err, msg):
        # An abort purges what was not sent yet: those reports carry an error.
        if err is None:
            txn_pending.append((msg.offset(), msg.key(), msg.value()))

    sent = 0
    while sent < updates:
        chunk = rng.randrange(500, 3000)
        for _ in range(min(chunk, updates - sent)):
            key = f"k{rng.randrange(KEYS):04d}".encode()
            value = None if sent % TOMBSTONE_EVERY == 0 else f"{round_no}-{sent}-{key.decode()}".encode()
            while True:
                try:
                    plain.produce(topic, key=key, value=value, partition=0, on_delivery=report)
                    break
                except BufferError:
                    plain.poll(0.05)
            sent += 1
        assert plain.flush(60) == 0
        for offset, key, value in pending:
            model.committed(offset, key, value)
        pending.clear()
        # A transaction over some of the same keys, committed or aborted.
        commit = rng.random() < 0.6
        txn.begin_transaction()
        txn_values = []
        for i in range(rng.randrange(5, 60)):
            key = f"k{rng.randrange(KEYS):04d}".encode()
            value = f"{round_no}-txn-{sent}-{i}-{'c' if commit else 'a'}".encode()
            txn.produce(topic, key=key, value=value, partition=0, on_delivery=txn_report)
            txn_values.append(value)
        if commit:
            txn.commit_transaction(30)
            for offset, key, value in txn_pending:
                model.committed(offset, key, value)
        else:
            txn.abort_transaction(30)
            model.aborted_values.update(txn_values)
        txn_pending.clear()
    txn.flush(10)


def partition_dir(broker, topic) -> Path:
    return broker.partition_dir(topic, 0)


def first_dirty(broker, topic) -> int:
    try:
        lines = (partition_dir(broker, topic) / "cleaner-checkpoint").read_text().splitlines()
        return int(lines[1])
    except (OSError, IndexError, ValueError):
        return -1


def active_base(broker, topic) -> int:
    return max(int(p.name[:20]) for p in partition_dir(broker, topic).glob("*.log"))


def wait_cleaned(broker, topic, timeout=120.0):
    """Until the cleaner has cleaned everything below the active segment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if first_dirty(broker, topic) >= active_base(broker, topic):
            return
        time.sleep(0.2)
    raise AssertionError(f"not cleaned after {timeout}s: first dirty {first_dirty(broker, topic)}, "
                         f"active segment at {active_base(broker, topic)}\n{broker.log_tail()}")


def read_all(bootstrap: str, topic: str, isolation: str):
    """(offset, key, value) of every record from the beginning to the end, in order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-check",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": True, "auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        return out
                    raise AssertionError(f"consumer error: {m.error()}")
                out.append((m.offset(), m.key(), m.value()))
        raise AssertionError(f"no end of partition after 60 s ({len(out)} records read)")
    finally:
        c.close()


def check(broker, topic, model: Model, context: str):
    records = read_all(broker.bootstrap, topic, "read_committed")
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets)), f"{context}: offsets not strictly ascending"
    state: dict[bytes, bytes | None] = {}
    for _, k, v in records:
        state[k] = v
    live = {k: v for k, v in state.items() if v is not None}
    assert live == model.live(), (
        f"{context}: {len(live)} live keys read, {len(model.live())} expected; differing: "
        f"{sorted(set(live.items()) ^ set(model.live().items()))[:10]}")
    values = {v for _, _, v in records if v is not None}
    assert not values & model.aborted_values, f"{context}: aborted values read"
    assert values <= model.committed_values, f"{context}: values never written"
    # Below the active segment (never cleaned) a record is the latest of its key there: it
    # may only be superseded by a write in the active segment.
    base = active_base(broker, topic)
    latest_below = {k: max((o for o in offs if o < base), default=-1)
                    for k, offs in model.history.items()}
    stale = [(o, k) for o, k, _ in records if o < base and o != latest_below.get(k)]
    assert not stale, f"{context}: {len(stale)} superseded records below the active segment " \
                      f"at {base}: {stale[:5]}"
    # Aborted transactional records are gone from the log, not just filtered.
    uncommitted = read_all(broker.bootstrap, topic, "read_uncommitted")
    leaked = [(o, v) for o, _, v in uncommitted if o < base and v in model.aborted_values]
    assert not leaked, f"{context}: aborted records still in cleaned segments: {leaked[:5]}"
    return records


def read_live_kafka_python(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """The live keys as kafka-python's read_committed consumer sees them (another decoder
    of the gaps and emptied batches compaction leaves)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, group_id=None)
    try:
        tp = KTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        state: dict[bytes, bytes | None] = {}
        deadline = time.monotonic() + 60
        while c.position(tp) < end:
            assert time.monotonic() < deadline, f"kafka-python stuck at {c.position(tp)} < {end}"
            for records in c.poll(timeout_ms=500).values():
                for r in records:
                    state[r.key] = r.value
        return {k: v for k, v in state.items() if v is not None}
    finally:
        c.close()


def test_compaction_keeps_latest_per_key_and_survives_kill9(broker_factory):
    rng = random.Random(20261205)
    b = broker_factory(settings=CLEANER)
    topic = create_topic(b.bootstrap, unique_topic("compact"), config=TOPIC_CONFIG)
    model = Model()
    produce_round(b.bootstrap, topic, model, rng, 0, UPDATES)
    wait_cleaned(b, topic)
    records = check(b, topic, model, "after cleaning")
    assert len(records) < UPDATES // 20, f"{len(records)} records left of {UPDATES}"
    print(f"{len(records)} records left of {UPDATES} updates and "
          f"{len(model.aborted_values)} aborted writes")
    segments_after_first = len(list(partition_dir(b, topic).glob("*.log")))
    assert read_live_kafka_python(b.bootstrap, topic) == model.live()

    # A second round, cleaned slowly, and the broker killed in the middle of a pass.
    b.stop()
    b.settings["log.cleaner.io.max.bytes.per.second"] = 400_000
    b.start()
    produce_round(b.bootstrap, topic, model, rng, 1, UPDATES // 4)
    before = first_dirty(b, topic)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(partition_dir(b, topic).glob("*.cleaned")) \
            and not list(partition_dir(b, topic).glob("*.swap")):
        time.sleep(0.01)
    in_pass = sorted(p.name for p in partition_dir(b, topic).iterdir()
                     if p.name.endswith((".cleaned", ".swap")))
    time.sleep(rng.random() * 0.3)
    b.kill9()
    print(f"killed during a pass writing {in_pass}; first dirty was {before}")
    verify = run_weir("debug", "verify", "--data-dir", str(b.data_dir), "--verbose", check=False)
    assert verify.returncode == 0, f"verify after kill -9:\n{verify.stdout}\n{verify.stderr}"
    del b.settings["log.cleaner.io.max.bytes.per.second"]
    b.start()
    check_no_loss = read_all(b.bootstrap, topic, "read_committed")
    state = {}
    for _, k, v in check_no_loss:
        state[k] = v
    assert {k: v for k, v in state.items() if v is not None} == model.live(), \
        "latest values lost by a kill -9 during cleaning"
    wait_cleaned(b, topic)
    check(b, topic, model, f"after kill -9 during cleaning (first dirty was {before})")
    segments = len(list(partition_dir(b, topic).glob("*.log")))
    print(f"segments: {segments_after_first} after the first round, {segments} at the end")
    b.stop()
    verify = run_weir("debug", "verify", "--data-dir", str(b.data_dir), "--strict", check=False)
    assert verify.returncode == 0, f"strict verify:\n{verify.stdout}\n{verify.stderr}"


def test_compressed_batches_are_compacted(broker_factory):
    """Every codec librdkafka writes: batches are decompressed, cleaned, compressed again."""
    rng = random.Random(7)
    b = broker_factory(settings=CLEANER)
    topic = create_topic(b.bootstrap, unique_topic("compact-codecs"), config=TOPIC_CONFIG)
    model = Model()
    for i, codec in enumerate(["gzip", "snappy", "lz4", "zstd"]):
        produce_round(b.bootstrap, topic, model, rng, i, UPDATES // 10, compression=codec)
    wait_cleaned(b, topic)
    records = check(b, topic, model, "after cleaning compressed batches")
    assert len(records) < UPDATES // 20, f"{len(records)} records left of {UPDATES * 4 // 10}"


def test_dynamic_cleanup_policy_and_cleaner_keys(broker_factory):
    """`log.cleanup.policy` and the `log.cleaner.*` keys Kafka makes dynamic change at run
    time: a topic without its own `cleanup.policy` becomes compacted when the cluster-wide
    default says so, and the cleaner follows new thread counts; `log.cleaner.enable` stays
    read-only."""
    from confluent_kafka import KafkaError as KE
    from confluent_kafka.admin import ConfigSource, ResourceType
    from confluent_kafka.admin import ConfigResource as CKConfigResource

    from conftest import admin_client, make_producer
    from test_admin_configs import ck_alter_broker, weir_default

    b = broker_factory(settings={"log.segment.bytes": "1024", "log.cleaner.backoff.ms": "100"})
    topic = unique_topic("dyncompact")
    create_topic(b.bootstrap, topic)
    p = make_producer(b.bootstrap)
    keys = [b"a", b"b", b"c", b"d", b"e"]
    last = {}
    for i in range(150):
        # One batch per request, so that 1 KiB segments roll between them.
        key = keys[i % len(keys)]
        last[key] = b"%d" % i + b"v" * 100
        p.produce(topic, key=key, value=last[key], partition=0)
        assert p.flush(15) == 0
    assert len(read_all(b.bootstrap, topic, "read_uncommitted")) == 150
    time.sleep(0.5)
    assert first_dirty(b, topic) == -1, "not compacted under the default policy"

    weir_default(b, "set", "log.cleanup.policy=compact", "log.cleaner.min.cleanable.ratio=0.01",
                 "log.cleaner.threads=2")
    wait_cleaned(b, topic, timeout=30)
    records = read_all(b.bootstrap, topic, "read_uncommitted")
    base = active_base(b, topic)
    below = [k for o, k, _ in records if o < base]
    assert len(below) == len(set(below)), f"a key twice below the active segment: {records}"
    assert {k: v for _, k, v in records} == last

    a = admin_client(b.bootstrap)
    res = a.describe_configs([CKConfigResource(ResourceType.BROKER, "0")])
    cfg = next(iter(res.values())).result(15)
    assert cfg["log.cleaner.threads"].value == "2"
    assert cfg["log.cleaner.threads"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert cfg["log.cleanup.policy"].value == "compact"
    err = ck_alter_broker(a, "0", {"log.cleaner.enable": "false"})
    assert err is not None and err.code() == KE.INVALID_REQUEST, err
    # The topic shows the broker default it follows.
    res = a.describe_configs([CKConfigResource(ResourceType.TOPIC, topic)])
    tcfg = next(iter(res.values())).result(15)
    assert tcfg["cleanup.policy"].value == "compact"
