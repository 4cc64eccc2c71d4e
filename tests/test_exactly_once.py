"""Exactly-once consume-transform-produce (issue: idempotent producers and transactions).

A processor (eos_processor.py, confluent-kafka) reads 100,000 input records and writes one
output record per input record, committing its consumer offsets inside each transaction. It
is SIGKILLed several times mid-stream and restarted. A read_committed reader of the output
must then see every input record exactly once; a read_uncommitted reader may also see the
records of the transactions the kills aborted.
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import create_topic, unique_topic

HERE = Path(__file__).resolve().parent
RECORDS = 100_000
PARTITIONS = 3
KILLS = 4
# Records per transaction: small enough that a run has about a thousand transactions, so
# the kills land at many different points of the stream.
BATCH = 100


def start_processor(bootstrap, source, sink, group, txn_id, log):
    return subprocess.Popen(
        [sys.executable, str(HERE / "eos_processor.py"), bootstrap, source, sink, group, txn_id,
         str(BATCH)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


class Progress:
    """The processor's committed input offsets, summed over partitions."""

    def __init__(self, bootstrap, group, topic):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "enable.auto.commit": False})
        self.parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def committed(self):
        return sum(max(tp.offset, 0) for tp in self.c.committed(self.parts, 10))

    def close(self):
        self.c.close()


def read_output(bootstrap, topic, isolation, expect_at_least, timeout=60.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                  "isolation.level": isolation, "auto.offset.reset": "earliest"})
    values = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            msgs = c.consume(5000, 0.3)
            if msgs:
                idle_since = time.monotonic()
            values.extend(m.value().decode() for m in msgs if m.error() is None)
            if len(values) >= expect_at_least and time.monotonic() - idle_since > 2.0:
                break
        return values
    finally:
        c.close()


def test_consume_transform_produce_survives_processor_kills(broker, tmp_path):
    source = create_topic(broker.bootstrap, unique_topic("eos-in"), PARTITIONS)
    sink = create_topic(broker.bootstrap, unique_topic("eos-out"), PARTITIONS)
    group = unique_topic("eos-group")
    txn_id = unique_topic("eos-tid")
    seed = int(os.environ.get("WEIR_EOS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"seed {seed}")

    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 10, "enable.idempotence": True})
    for i in range(RECORDS):
        p.produce(source, key=str(i).encode(), value=f"v{i}".encode(), partition=i % PARTITIONS)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0

    log = open(tmp_path / "processor.log", "ab")
    progress = Progress(broker.bootstrap, group, source)
    # Kill when the committed input passes each of these points (random, spread out).
    points = sorted(rng.sample(range(RECORDS // 20, RECORDS * 9 // 10, RECORDS // 50), KILLS))
    kills = 0
    started = time.monotonic()
    proc = start_processor(broker.bootstrap, source, sink, group, txn_id, log)

    def alive():
        assert proc.poll() is None, f"processor exited: {(tmp_path / 'processor.log').read_text()}"

    try:
        deadline = time.monotonic() + 240
        for point in points:
            while (done := progress.committed()) < point:
                assert time.monotonic() < deadline, f"stuck at {done} committed records"
                alive()
                time.sleep(0.05)
            # Let it get into the middle of its next transaction.
            time.sleep(rng.uniform(0.0, 0.05))
            alive()
            proc.kill()
            proc.wait()
            kills += 1
            print(f"kill {kills} after {done} committed input records")
            proc = start_processor(broker.bootstrap, source, sink, group, txn_id, log)
        while progress.committed() < RECORDS:
            assert time.monotonic() < deadline, "processor did not finish"
            alive()
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
        log.close()
        progress.close()
    print(f"{RECORDS} records processed in {elapsed:.1f}s with {kills} processor kills")

    committed = read_output(broker.bootstrap, sink, "read_committed", RECORDS)
    seen = {}
    for v in committed:
        partition, offset, value = v.split(":", 2)
        key = (int(partition), int(offset))
        seen[key] = seen.get(key, 0) + 1
    duplicates = {k: n for k, n in seen.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} input records appear more than once, e.g. {list(duplicates)[:5]}"
    expected = {(i % PARTITIONS, i // PARTITIONS) for i in range(RECORDS)}
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} input records missing, e.g. {sorted(missing)[:5]}"
    assert len(committed) == RECORDS
    # The values travel intact: input record i sits at offset i // 3 of partition i % 3.
    for v in committed[:1000]:
        partition, offset, value = v.split(":", 2)
        assert value == f"v{int(offset) * PARTITIONS + int(partition)}"

    everything = read_output(broker.bootstrap, sink, "read_uncommitted", RECORDS)
    print(f"read_committed saw {len(committed)} records, read_uncommitted {len(everything)} "
          f"({len(everything) - len(committed)} from aborted transactions)")
    assert len(everything) >= RECORDS


def test_transactional_offsets_survive_a_broker_crash(broker_factory):
    """Offsets sent with send_offsets_to_transaction are durable: a broker killed right
    after commit_transaction returns still has them; a broker killed while the transaction
    is open drops them when the transaction times out and is aborted."""
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique_topic("txo"), 1)
    group = unique_topic("txo-group")
    tid = unique_topic("txo-tid")

    def producer():
        p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": tid,
                      "transaction.timeout.ms": 3000})
        p.init_transactions(30)
        return p

    def committed():
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                      "isolation.level": "read_committed", "enable.auto.commit": False})
        try:
            return c.committed([TopicPartition(topic, 0)], 30)[0].offset
        finally:
            c.close()

    # The group's coordinator first: on a fresh cluster its first lookup creates
    # `__consumer_offsets` (50 partitions, 3 replicas), which can outlast the 3 s transaction
    # below; librdkafka 2.x, its transaction aborted on timeout in the middle of
    # send_offsets_to_transaction, was seen to wait forever despite the call's timeout.
    assert committed() < 0  # nothing committed yet (OFFSET_INVALID)
    meta = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group}).consumer_group_metadata()
    p = producer()
    p.begin_transaction()
    p.produce(topic, value=b"a")
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 42)], meta, 30)
    p.commit_transaction(30)
    b.kill9()
    b.start()

    assert committed() == 42

    p = producer()
    p.begin_transaction()
    p.produce(topic, value=b"b")
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 99)], meta, 30)
    p.flush(10)
    b.kill9()
    b.start()
    # The open transaction's offsets are pending: a read_committed consumer's committed()
    # waits (UNSTABLE_OFFSET_COMMIT) until the 3 s timeout aborts it, then sees 42 again.
    started = time.monotonic()
    assert committed() == 42
    print(f"pending offsets resolved {time.monotonic() - started:.1f}s after restart")
