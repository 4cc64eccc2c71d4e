"""The fault harness's clients (test_cluster_faults.py): each runs in a thread and writes what
it learns to the History (history.py) as it happens.

- `Writer`: an idempotent acks=all producer of unique values; the delivery callback records
  `ack` (partition, offset) or `unknown` (the client could not tell).
- `Probe`: acks=all sends to every partition of its topic every 10 ms; `failover(led, t)` is the
  time from a leader's kill to the first acknowledged send (sent after the kill) to a partition
  it led.
- `Member`: one read_committed member of a consumer group: records every record it sees,
  commits its positions every second (acknowledged commits recorded), asks OffsetFetch now
  and then (answers recorded).
- `TxnLoop`: consume-transform-produce in transactions (the eos_processor.py pattern): the
  outcome of each transaction with its outputs.
- `read_everything`: the final read_committed read of a topic through one broker.
Coordinators may stall while their broker is down: every call has a timeout, and a failed
call is retried later, never recorded as a success.
"""

from __future__ import annotations

import faulthandler
import sys
import threading
import time
from collections import deque

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from history import History

CALL_TIMEOUT = 10.0


class Worker:
    def __init__(self, name: str):
        self.name = name
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _guarded(self):
        try:
            self.run()
        except Exception as e:  # surfaced by finish(): a worker must not die silently
            self.errors.append(f"{self.name} died: {e!r}")

    def run(self):
        raise NotImplementedError

    def finish(self, timeout: float = 180.0):
        self.stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            # Where every thread is (a client call that never returns), for the report.
            sys.stderr.write(f"--- {self.name} did not stop; all threads:\n")
            faulthandler.dump_traceback(all_threads=True)
            self.errors.append(f"{self.name} did not stop within {timeout}s")


class Writer(Worker):
    def __init__(self, name: str, bootstrap: str, topic: str, history: History,
                 interval: float = 0.01):
        super().__init__(name)
        self.bootstrap, self.topic, self.history, self.interval = bootstrap, topic, history, interval
        self.acked = 0
        self.unknown = 0

    def _producer(self) -> Producer:
        return Producer({
            "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500, "topic.metadata.refresh.interval.ms": 2000,
        })

    def _delivered(self, err, msg):
        v = msg.value().decode()
        if err is None:
            self.acked += 1
            self.history.add("ack", t=self.topic, p=msg.partition(), o=msg.offset(), v=v,
                             at=time.monotonic())
        else:
            self.unknown += 1
            self.history.add("unknown", t=self.topic, v=v, err=str(err))

    def run(self):
        producer, n = self._producer(), 0
        while not self.stop.is_set():
            value = f"{self.name}-{n}"
            try:
                producer.produce(self.topic, value=value.encode(), on_delivery=self._delivered)
                n += 1
            except BufferError:
                producer.poll(0.1)
                continue
            except KafkaException as e:
                # A fatal idempotence error: what was queued is reported through the callbacks
                # (as errors, so "unknown"); a new producer gets a new producer id.
                self.history.add("producer_fatal", who=self.name, err=str(e))
                producer.flush(5)
                producer = self._producer()
                continue
            producer.poll(0)
            time.sleep(self.interval)
        left = producer.flush(150)
        if left:
            self.errors.append(f"{self.name}: {left} records still unanswered after flush")


class Probe(Worker):
    def __init__(self, bootstrap: str, topic: str, partitions: int, every: float = 0.01):
        super().__init__("probe")
        self.bootstrap, self.topic, self.partitions, self.every = bootstrap, topic, partitions, every
        self.lock = threading.Lock()
        self.acks: dict[int, deque] = {p: deque() for p in range(partitions)}  # (sent, acked)

    def _delivered(self, err, msg):
        if err is None:
            sent = float(msg.value().decode().split(":")[1])
            now = time.monotonic()
            with self.lock:
                q = self.acks[msg.partition()]
                q.append((sent, now))
                while q and q[0][1] < now - 300:
                    q.popleft()

    def run(self):
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                             "enable.idempotence": True, "linger.ms": 0,
                             "message.timeout.ms": 120000, "retry.backoff.ms": 20,
                             "retry.backoff.max.ms": 100,
                             "topic.metadata.refresh.interval.ms": 1000})
        while not self.stop.is_set():
            for p in range(self.partitions):
                try:
                    producer.produce(self.topic, value=f"{p}:{time.monotonic()}".encode(),
                                     partition=p, on_delivery=self._delivered)
                except BufferError:
                    pass
            producer.poll(self.every)
        producer.flush(30)

    def failover(self, led: set[int], killed_at: float) -> float | None:
        with self.lock:
            firsts = [acked for p in led for sent, acked in self.acks[p] if sent > killed_at]
        return min(firsts) - killed_at if firsts else None


class Member(Worker):
    def __init__(self, name: str, bootstrap: str, topic: str, group: str, history: History):
        super().__init__(name)
        self.bootstrap, self.topic, self.group, self.history = bootstrap, topic, group, history
        self.seen = 0
        self.commit_failures = 0

    def _record_offsets(self, kind: str, tps):
        for tp in tps or []:
            if tp.error is None and tp.offset >= 0:
                self.history.add(kind, g=self.group, t=tp.topic, p=tp.partition, o=tp.offset)

    def run(self):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                      "isolation.level": "read_committed", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                      "heartbeat.interval.ms": 1000,
                      "topic.metadata.refresh.interval.ms": 2000})
        c.subscribe([self.topic])
        last_commit = last_fetch = time.monotonic()
        while not self.stop.is_set():
            for m in c.consume(200, 0.5):
                if m.error() is None:
                    self.seen += 1
                    self.history.add("seen", t=m.topic(), p=m.partition(), o=m.offset(),
                                     v=m.value().decode(), r=self.name, rc=True)
            now = time.monotonic()
            try:
                if now - last_commit >= 1.0:
                    last_commit = now
                    self._record_offsets("commit", c.commit(asynchronous=False))
                if now - last_fetch >= 3.0 and c.assignment():
                    last_fetch = now
                    self._record_offsets("fetched", c.committed(c.assignment(), CALL_TIMEOUT))
            except KafkaException as e:
                # No offsets to commit, or the coordinator unreachable, rebalancing, fenced:
                # nothing was acknowledged, so nothing is recorded.
                if e.args[0].code() != KafkaError._NO_OFFSET:
                    self.commit_failures += 1
        try:
            c.close()
        except KafkaException:
            pass


class TxnLoop(Worker):
    """Reads `source` read_committed in group `group`, writes "<name>|t|p|o|<txn seq>" per input
    to `sink` and commits the input offsets in the same transaction."""

    def __init__(self, name: str, bootstrap: str, source: str, sink: str, history: History):
        super().__init__(name)
        self.bootstrap, self.source, self.sink, self.history = bootstrap, source, sink, history
        self.group = f"{name}-group"
        self.seq = 0

    def _clients(self):
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": self.name,
                             "linger.ms": 5, "transaction.timeout.ms": 20000,
                             "message.timeout.ms": 20000})
        producer.init_transactions(60)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                             "group.instance.id": f"{self.name}-member",
                             "session.timeout.ms": 10000, "isolation.level": "read_committed",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        consumer.subscribe([self.source])
        return producer, consumer

    def run(self):
        producer = consumer = None
        while not self.stop.is_set():
            if producer is None:
                try:
                    producer, consumer = self._clients()
                except KafkaException as e:  # its coordinator is down: try again
                    self.history.add("txn_restart", who=self.name, err=str(e))
                    if consumer is not None:
                        consumer.close()
                    producer = consumer = None
                    time.sleep(1)
                    continue
            msgs = [m for m in consumer.consume(200, 0.5) if m.error() is None]
            if not msgs:
                continue
            self.seq += 1
            txn_id = f"{self.name}#{self.seq}"
            outputs = [f"{self.name}|{m.topic()}|{m.partition()}|{m.offset()}|{self.seq}"
                       for m in msgs]
            outcome = "unknown"
            try:
                producer.begin_transaction()
                for m, out in zip(msgs, outputs):
                    producer.produce(self.sink, value=out.encode(), partition=m.partition())
                producer.send_offsets_to_transaction(
                    consumer.position(consumer.assignment()),
                    consumer.consumer_group_metadata(), 30)
                producer.commit_transaction(30)
                outcome = "commit"
            except KafkaException as e:
                err = e.args[0]
                if err.txn_requires_abort():
                    try:
                        producer.abort_transaction(30)
                        outcome = "abort"
                    except KafkaException:
                        pass
                if outcome != "abort":
                    # Fatal, retriable or timed out: the end of this transaction is unknown.
                    # Start over with new clients: init_transactions fences this incarnation
                    # and resolves what it left open; the consumer restarts at the committed
                    # offsets.
                    consumer.close()
                    producer = consumer = None
                else:
                    self._rewind(consumer)
            self.history.add("txn", id=txn_id, outcome=outcome, outputs=outputs,
                             inputs=[[m.topic(), m.partition(), m.offset()] for m in msgs])
        if consumer is not None:
            consumer.close()

    @staticmethod
    def _rewind(consumer: Consumer):
        try:
            for tp in consumer.committed(consumer.assignment(), CALL_TIMEOUT):
                consumer.seek(TopicPartition(tp.topic, tp.partition,
                                             tp.offset if tp.offset >= 0 else 0))
        except KafkaException:
            pass


def read_everything(bootstrap: str, topic: str, partitions: int, history: History,
                    via: int, timeout: float = 120.0) -> int:
    """Reads `topic` from the start to its high watermarks (read_committed: to the last stable
    offsets) and records each record as `final`. Returns the number read."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"final-{topic}-{via}",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    ends = {}
    for p in range(partitions):
        _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions) if ends[p] > 0])
    done = {p for p in range(partitions) if ends[p] == 0}
    n = 0
    deadline = time.monotonic() + timeout
    while len(done) < partitions:
        if time.monotonic() > deadline:
            raise AssertionError(f"final read of {topic} via broker {via} stalled: "
                                 f"{partitions - len(done)} partitions not at their end {ends}")
        for m in c.consume(500, 1.0):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= ends[m.partition()]:
                        done.add(m.partition())
                    continue
                raise AssertionError(f"final read of {topic} via broker {via}: {m.error()}")
            history.add("final", t=topic, p=m.partition(), o=m.offset(), v=m.value().decode(),
                        via=via)
            n += 1
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
    c.close()
    return n
