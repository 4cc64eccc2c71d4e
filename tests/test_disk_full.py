"""A full disk fails writes cleanly, keeps reads working and recovers once space is freed.

The data directory lives on a small tmpfs (mounting one needs root; the test is skipped
otherwise). A ballast topic takes most of the space, then a producer with acks=all fills the
rest. Producers must get a storage error (never a crash or a corrupt segment), every
acknowledged record must stay readable, other writes (topic creation, offset commits) must
fail with an error and not a panic, and after deleting the ballast topic the same partition
must take writes again at the next offset.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import (admin_client, consume_partitions, create_topic, make_producer, produce_all,
                      run_weir, watermarks)

TMPFS_SIZE = 24 << 20
SETTINGS = {"log.segment.bytes": 1 << 20, "group.initial.rebalance.delay.ms": 0}


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a {TMPFS_SIZE >> 20} MiB tmpfs (needs root): "
                    f"{r.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(bootstrap, topic, value_size=1000, max_seconds=60.0):
    """Produces until delivery reports fail; returns (acked [(offset, value)], error codes)."""
    p = make_producer(bootstrap, **{"retries": 0, "enable.idempotence": False,
                                    "message.timeout.ms": 10000, "linger.ms": 5})
    acked, errors = [], []

    def cb(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))
        else:
            errors.append(err)

    n = 0
    deadline = time.monotonic() + max_seconds
    first_error_at = None
    while time.monotonic() < deadline:
        if errors and first_error_at is None:
            first_error_at = time.monotonic()
        # Keep writing a little after the first failure: the broker must stay up and keep
        # failing cleanly, not just once.
        if first_error_at is not None and time.monotonic() - first_error_at > 2.0:
            break
        try:
            p.produce(topic, value=f"{n:08d}:".encode() + b"x" * value_size, partition=0,
                      on_delivery=cb)
            n += 1
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    assert p.flush(30) == 0
    return acked, errors


def test_disk_full_fails_writes_cleanly_and_recovers(small_disk, broker_factory):
    # small_disk first: fixtures tear down in reverse, so the broker dies before the unmount.
    data = small_disk / "data"
    b = broker_factory(data_dir=data, settings=SETTINGS)
    try:
        ballast = create_topic(b.bootstrap, "ballast", 1)
        ballast_msgs = [{"topic": ballast, "partition": 0, "value": b"b" * 4000}
                        for _ in range(3000)]  # ~12 MiB
        produce_all(make_producer(b.bootstrap), ballast_msgs)
        topic = create_topic(b.bootstrap, "full", 1)

        acked, errors = fill(b.bootstrap, topic)
        assert errors, "the disk never filled up"
        assert len(acked) > 100, f"only {len(acked)} records fit; ballast too large?"
        codes = {e.code() for e in errors}
        names = sorted(e.name() for e in errors)
        print(f"\ndisk full after {len(acked)} records; {len(errors)} failed deliveries, "
              f"codes {sorted(set(names))}")
        assert codes <= {KafkaError.KAFKA_STORAGE_ERROR}, \
            f"expected KAFKA_STORAGE_ERROR only, got {sorted(set(names))}"
        assert b.alive(), f"broker died on a full disk\n{b.log_tail()}"
        assert "panicked" not in b.log_path.read_text(errors="replace")

        # Offsets: the failed writes left no trace, the log ends right after the last ack.
        acked.sort()
        offsets = [o for o, _ in acked]
        assert offsets == list(range(len(acked))), "acked offsets are not 0..n-1"
        lo, hi = watermarks(b.bootstrap, topic, 0)
        assert (lo, hi) == (0, len(acked)), (lo, hi, len(acked))

        # Reads keep working and return every acknowledged record.
        got = consume_partitions(b.bootstrap, topic, [0])[0]
        assert [(m.offset(), m.value()) for m in got] == acked

        # Other writes fail with an error, not a crash: a new topic, an offset commit.
        a = admin_client(b.bootstrap)
        fut = a.create_topics([NewTopic("while-full", 4, 1)], request_timeout=10)["while-full"]
        try:
            fut.result(15)
            created = True
        except KafkaException as e:
            created = False
            print(f"create topic on a full disk: {e}")
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "full-group",
                      "enable.auto.commit": False})
        try:
            try:
                c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
                committed_while_full = True
            except KafkaException as e:
                committed_while_full = False
                print(f"offset commit on a full disk: {e}")
        finally:
            c.close()
        assert b.alive(), f"broker died on a full-disk metadata write\n{b.log_tail()}"
        # Still full: the same partition keeps failing cleanly.
        more_acked, more_errors = fill(b.bootstrap, topic, max_seconds=5)
        assert more_errors, f"{len(more_acked)} more records fit and none failed"
        assert {e.code() for e in more_errors} <= {KafkaError.KAFKA_STORAGE_ERROR}, more_errors[:3]
        acked += sorted(more_acked)

        # Free space by deleting the ballast topic; writes resume on the same partition.
        a.delete_topics([ballast], operation_timeout=10)[ballast].result(15)
        deadline = time.monotonic() + 10
        while (data / f"{ballast}-0").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        reports = produce_all(make_producer(b.bootstrap),
                              [{"topic": topic, "partition": 0, "value": f"after-{i}".encode()}
                               for i in range(1000)])
        assert [o for _, o in reports] == list(range(len(acked), len(acked) + 1000)), \
            "writes after freeing space must continue at the next offset"
        acked += [(o, f"after-{i}".encode()) for i, (_, o) in enumerate(reports)]
        if not created:
            create_topic(b.bootstrap, "while-full", 4)
        if not committed_while_full:
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "full-group",
                          "enable.auto.commit": False})
            try:
                c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
            finally:
                c.close()

        # A clean stop leaves a directory a strict verify accepts, and everything is back
        # after a restart.
        assert b.stop() == 0, f"clean stop failed\n{b.log_tail()}"
        out = run_weir("debug", "verify", "--data-dir", str(data), "--strict", check=False)
        assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
        b.start()
        got = consume_partitions(b.bootstrap, topic, [0])[0]
        assert [(m.offset(), m.value()) for m in got] == acked
    finally:
        # Unmounting needs the broker gone.
        b.kill9()
