"""What the broker acknowledged survives a clean restart and kill -9."""

import threading
import time

from confluent_kafka.admin import ConfigResource, ResourceType

from conftest import (admin_client, consume_partitions, create_topic, make_producer, produce_all,
                      topic_partition_counts, unique_topic)


def test_clean_restart_keeps_records_topics_and_configs(broker_factory, tmp_path):
    b = broker_factory(data_dir=tmp_path / "data")
    topic = create_topic(b.bootstrap, unique_topic("dur"), 4,
                         config={"retention.ms": "987654321", "cleanup.policy": "delete"})
    other = create_topic(b.bootstrap, unique_topic("dur-empty"), 2)
    msgs = [{"topic": topic, "partition": i % 4, "key": f"k{i}".encode(),
             "value": f"value-{i}".encode(), "headers": [("i", str(i).encode())],
             "timestamp": 1_700_000_000_000 + i} for i in range(10_000)]
    reports = produce_all(make_producer(b.bootstrap, **{"compression.type": "lz4"}), msgs)

    assert b.stop() == 0, f"clean shutdown must exit 0\n{b.log_tail()}"
    b.restart()

    counts = topic_partition_counts(b.bootstrap)
    assert counts.get(topic) == 4 and counts.get(other) == 2, counts
    a = admin_client(b.bootstrap)  # must outlive the future
    res = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    (f,) = res.values()
    cfg = {k: e.value for k, e in f.result(15).items()}
    assert (cfg["retention.ms"], cfg["cleanup.policy"]) == ("987654321", "delete"), cfg

    got = consume_partitions(b.bootstrap, topic, range(4))
    expected = {p: [] for p in range(4)}
    for m, (p, off) in sorted(zip(msgs, reports), key=lambda x: x[1]):
        expected[p].append((off, m["key"], m["value"], m["headers"], m["timestamp"]))
    for p in range(4):
        assert [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in got[p]] \
            == expected[p], f"partition {p} differs after restart"
    assert sum(len(v) for v in got.values()) == 10_000

    # Still writable at the right offsets after the restart.
    r = produce_all(make_producer(b.bootstrap), [{"topic": topic, "partition": 0, "value": b"after"}])
    assert r == [(0, 2500)]


class ContinuousProducer(threading.Thread):
    """Sends numbered records until stopped; remembers every acknowledged one."""

    def __init__(self, bootstrap, topic, partitions, cycle):
        super().__init__(daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.cycle = cycle
        self.producer = make_producer(bootstrap, **{
            "enable.idempotence": False,
            "linger.ms": 2,
            "retries": 0,  # a retry could legitimately duplicate; we test the broker, not that
            "message.timeout.ms": 5000,
            "request.timeout.ms": 4000,
            "reconnect.backoff.max.ms": 200,
        })
        self.acked = []  # (partition, offset, value)
        self.failed = 0
        self.sent = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def _cb(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed += 1

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            for _ in range(50):
                value = f"c{self.cycle}-{n:08d}".encode()
                try:
                    self.producer.produce(self.topic, value=value, partition=n % self.partitions,
                                          on_delivery=self._cb)
                except BufferError:
                    break
                n += 1
            self.producer.poll(0.002)
        self.sent = n

    def finish(self):
        self.stop_flag.set()
        self.join(10)
        # The broker is dead: drop what was never answered so flush() returns promptly.
        self.producer.purge(in_queue=True, in_flight=True, blocking=False)
        self.producer.flush(10)


def test_kill9_while_producing_loses_no_acked_record(broker_factory, tmp_path):
    partitions = 3
    b = broker_factory(data_dir=tmp_path / "data")
    topic = create_topic(b.bootstrap, unique_topic("kill"), partitions)
    all_acked = []
    for cycle in range(3):
        prod = ContinuousProducer(b.bootstrap, topic, partitions, cycle)
        prod.start()
        time.sleep(2.0)
        b.kill9()
        prod.finish()
        assert len(prod.acked) > 100, (
            f"cycle {cycle}: only {len(prod.acked)} records acked in 2 s "
            f"({prod.failed} failed) — the test proves nothing\n{b.log_tail()}")
        all_acked += prod.acked

        b.restart()
        got = consume_partitions(b.bootstrap, topic, range(partitions), timeout=60)
        values_seen = {}
        for p in range(partitions):
            offsets = [m.offset() for m in got[p]]
            assert offsets == list(range(len(offsets))), \
                f"cycle {cycle} partition {p}: offsets have gaps or disorder"
            for m in got[p]:
                v = m.value()
                assert v not in values_seen, \
                    f"cycle {cycle}: value {v!r} at {(p, m.offset())} and {values_seen[v]}"
                values_seen[v] = (p, m.offset())
        missing = [(p, off, v) for p, off, v in all_acked if values_seen.get(v) != (p, off)]
        assert not missing, (
            f"cycle {cycle}: {len(missing)} of {len(all_acked)} acknowledged records are not at "
            f"their acked (partition, offset); first: "
            f"{[(x, values_seen.get(x[2])) for x in missing[:5]]}")
        # Within a partition, one cycle's records appear in the order they were sent.
        for p in range(partitions):
            seq = [m.value() for m in got[p]]
            for c in range(cycle + 1):
                mine = [v for v in seq if v.startswith(f"c{c}-".encode())]
                assert mine == sorted(mine), f"cycle {c} partition {p}: records out of order"
