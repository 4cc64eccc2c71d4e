"""Time- and size-based retention delete whole old segments while the log keeps growing."""

import threading
import time

import pytest

from conftest import (consume_partitions, create_topic, make_producer, produce_all, unique_topic,
                      watermarks)

SEGMENT = 16384
SETTINGS = {"log.retention.check.interval.ms": 200, "log.segment.bytes": SEGMENT}


def log_files(broker, topic):
    d = broker.partition_dir(topic, 0)
    assert d.is_dir(), f"no partition directory {d}; data dir has {sorted(broker.data_dir.iterdir())}"
    return sorted(p for p in d.iterdir() if p.suffix == ".log")


def check_start_matches_first_segment(broker, topic):
    """With Kafka's naming (20-digit base offset) the first segment starts at the log start.

    Retention keeps running, so compare only a listing that did not change around the read.
    Retention moves the log start first (no fetch may enter a doomed segment) and then renames
    the segments away one by one, each rename made durable before the next, so a listing may
    briefly lag the start it reports; it must catch up, and never start above it."""
    seen = []
    for _ in range(40):
        before = [p.stem for p in log_files(broker, topic)]
        earliest, _ = watermarks(broker.bootstrap, topic, 0)
        after = [p.stem for p in log_files(broker, topic)]
        if before != after:
            time.sleep(0.05)
            continue
        assert after and all(n.isdigit() and len(n) == 20 for n in after), after
        assert int(after[0]) <= earliest, ("a segment above the log start is missing",
                                           after, earliest)
        if int(after[0]) == earliest:
            return
        seen.append((after[:3], earliest))
        time.sleep(0.05)
    raise AssertionError(f"the first segment never matched the log start: {seen[-5:]}")


class Trickle(threading.Thread):
    """Keeps producing small records to partition 0 and remembers (offset -> value)."""

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        self.producer = make_producer(bootstrap)
        self.topic = topic
        self.stop_flag = threading.Event()
        self.acked = {}
        self.errors = []

    def _cb(self, err, msg):
        if err is None:
            self.acked[msg.offset()] = msg.value()
        else:
            self.errors.append(err)

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            self.producer.produce(self.topic, value=f"trickle-{n}".encode() + b"t" * 500,
                                  partition=0, on_delivery=self._cb)
            n += 1
            self.producer.poll(0.01)
        self.producer.flush(10)


def produce_megabyte(bootstrap, topic):
    msgs = [{"topic": topic, "partition": 0, "value": f"bulk-{i}-".encode() + b"b" * 1000}
            for i in range(1000)]
    # Small batches: a segment only rolls between batches, and one 1 MB batch is one segment.
    reports = produce_all(make_producer(bootstrap, **{"batch.size": 4096}), msgs)
    return {off: m["value"] for m, (_, off) in zip(msgs, reports)}


def log_bytes(broker, topic):
    total = 0
    for p in log_files(broker, topic):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass  # retention deleted it between the listing and the stat
    return total


def wait_for_retention(broker, topic, trickle, max_files_before, max_bytes=None, timeout=30.0):
    """Polls until the log start moved above 0, fewer .log files remain than before and (for
    retention.bytes) the .log files hold at most max_bytes."""
    deadline = time.monotonic() + timeout
    earliest, files, size = 0, max_files_before, None
    while time.monotonic() < deadline:
        earliest, _ = watermarks(broker.bootstrap, topic, 0)
        files = len(log_files(broker, topic))
        size = log_bytes(broker, topic)
        if earliest > 0 and files < max_files_before and (max_bytes is None or size <= max_bytes):
            return earliest
        time.sleep(0.3)
    trickle.stop_flag.set()
    raise AssertionError(f"retention did not happen in {timeout}s: earliest offset {earliest}, "
                         f"{files} .log files (had {max_files_before}), {size} bytes "
                         f"(limit {max_bytes})\n{broker.log_tail()}")


def check_readable_from_start(broker, topic, expected):
    """Reads partition 0 from the log start to the high watermark: contiguous offsets, and every
    record we know the value of (bulk + trickle acks so far) is unchanged."""
    earliest, high = watermarks(broker.bootstrap, topic, 0)
    got = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert got, "nothing readable after retention"
    offsets = [m.offset() for m in got]
    assert offsets[0] >= earliest
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), "gaps after retention"
    assert offsets[-1] >= high - 1
    known = 0
    for m in got:
        if m.offset() in expected:
            assert m.value() == expected[m.offset()], f"offset {m.offset()} changed"
            known += 1
    assert known >= len(got) - 200, f"only {known} of {len(got)} read records were acked to us"


@pytest.mark.parametrize("kind", ["retention.ms", "retention.bytes"])
def test_retention_deletes_old_segments(broker_factory, kind):
    b = broker_factory(settings=SETTINGS)
    cfg = {"segment.bytes": SEGMENT, "cleanup.policy": "delete"}
    if kind == "retention.ms":
        cfg["retention.ms"] = 2000
    else:
        cfg["retention.bytes"] = 4 * SEGMENT
        cfg["retention.ms"] = 3_600_000
    topic = create_topic(b.bootstrap, unique_topic("ret"), 1, config=cfg)

    expected = produce_megabyte(b.bootstrap, topic)
    files_after_bulk = len(log_files(b, topic))
    if kind == "retention.ms":
        # Checked right away: nothing is 2 s old yet.
        assert watermarks(b.bootstrap, topic, 0)[0] == 0
        # ~1 MB in 16 KiB segments must have rolled many times.
        assert files_after_bulk >= 20, f"only {files_after_bulk} segments for ~1 MB"
    else:
        assert files_after_bulk >= 3, f"only {files_after_bulk} segments for ~1 MB"

    trickle = Trickle(b.bootstrap, topic)
    trickle.start()
    try:
        if kind == "retention.ms":
            earliest = wait_for_retention(b, topic, trickle, files_after_bulk)
        else:
            # Kafka keeps at most retention.bytes plus the active segment (+ one batch).
            earliest = wait_for_retention(b, topic, trickle, max(files_after_bulk, 20),
                                          max_bytes=4 * SEGMENT + SEGMENT + 4096)
        # Checked while the producer still runs: with retention.ms=2000 an idle log empties.
        check_start_matches_first_segment(b, topic)
        expected.update(trickle.acked)
        check_readable_from_start(b, topic, expected)
        earliest_now, _ = watermarks(b.bootstrap, topic, 0)
        assert earliest_now >= earliest, "log start offset went backwards"
    finally:
        trickle.stop_flag.set()
        trickle.join(20)
    assert not trickle.errors, trickle.errors[:5]
    assert trickle.acked, "the trickle producer got no acks"
