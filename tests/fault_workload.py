"""The fault harness's clients (test_cluster_faults.py). Each worker runs in its own process
(this file, run with its spec as JSON) with one Python thread that owns its librdkafka clients,
and writes what it learns to its own history file as it happens (history.py merges them).

Why processes: a blocking librdkafka call holds the GIL in confluent-kafka (e.g.
`Consumer.assignment()` waits for librdkafka's main thread while holding it). With several
workers as threads of one process, that thread waited on librdkafka locks held by threads
that waited for the GIL (a delivery callback, `send_offsets_to_transaction`): a 20-episode
run hung. With one Python thread per process nothing else needs the GIL while a call blocks.
librdkafka can still wedge on its own: a lock-order inversion between its handle lock and a
partition lock when a leader becomes unreachable while an OffsetForLeaderEpoch is in flight
(confluentinc/librdkafka#5476, open) left a TxnLoop inside `consume(200, 0.5)` for ten
minutes of a 200-episode run, and `send_offsets_to_transaction` ignores its timeout while the
group coordinator it cached is down (confluentinc/librdkafka#5456 and #5511, open: the
coordinator request's deadline is never checked), which left a TxnLoop in that call for
minutes after a restart episode. So each worker beats (a timestamp file) every loop turn, and
`revive_if_stuck` (called by the test between episodes) prints the stacks of a worker that
has not beaten for `STUCK_S` (SIGUSR1, faulthandler), kills it and starts a new incarnation
with the same identity (transactional id, static group member) and a new history file: what
the old one recorded stays true, and what it did not record is never claimed.
`revive_if_crashed` does the same for a worker killed by a signal (a crash inside the
client library; its stacks and glibc's reason go to the test's output). Workers stop
on SIGTERM (or their parent's death) and leave without closing their clients (`os._exit`
once the history is written): close() may wait on an unreachable coordinator, and nothing it
does is checked.

- `Writer`: an idempotent acks=all producer of unique values; the delivery callback records
  `ack` (partition, offset) or `unknown` (the client could not tell).
- `Probe`: acks=all sends to every partition of its topic every 10 ms, each acknowledgement
  to its own file; `failover(led, t)` (in the parent) is the time from a leader's kill to the
  first acknowledged send (sent after the kill) to a partition it led.
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

import ctypes
import faulthandler
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

from history import History

CALL_TIMEOUT = 10.0
# No loop turn of a worker takes this long unless its client is wedged: the longest bounded
# call is init_transactions(60).
STUCK_S = 120.0


class Worker:
    """The parent's handle of a worker process; in the child, the worker itself."""

    COUNTERS: tuple[str, ...] = ()
    SUFFIX = ".jsonl"  # the checker merges `<history stem>.*.jsonl`
    # The child's beat file and when it last wrote it (class defaults: the child is built
    # from its spec without __init__).
    _beat_fd: int | None = None
    _last_beat = 0.0

    def __init__(self, name: str, history: History | None = None):
        self.name = name
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.history = history
        base = history.path if history is not None else \
            Path(tempfile.mkdtemp(prefix="weir-workload-")) / "workload.jsonl"
        self._base = base
        self.revivals = 0
        # Incarnations that died of a signal (a crash inside the client library), replaced.
        self.crashes: list[int] = []
        self.wedged_at_stop = False
        self._paths()
        self.proc: subprocess.Popen | None = None
        self._started = 0.0

    def _paths(self):
        """This incarnation's files (the first has no `~N`)."""
        n = self.revivals + len(self.crashes)
        base, tag = self._base, self.name + (f"~{n}" if n else "")
        self.history_path = str(base.parent / f"{base.stem}.{tag}{self.SUFFIX}")
        self.result_path = str(base.parent / f"{base.stem}.{tag}.result.json")
        self.beat_path = str(base.parent / f"{base.stem}.{tag}.beat")

    def _spec(self) -> dict:
        skip = {"history", "stop", "proc", "errors", "lock", "acks"}
        state = {k: v for k, v in vars(self).items()
                 if k not in skip and not k.startswith("_")
                 and isinstance(v, (str, int, float, bool, type(None)))}
        return {"class": type(self).__name__, "state": state}

    def start(self):
        for path in (self.result_path, self.beat_path):
            if os.path.exists(path):
                os.unlink(path)
        self._started = time.monotonic()
        # glibc reports heap corruption on the terminal unless told otherwise: a crash of
        # the client library must leave its reason in the test's output.
        env = dict(os.environ, LIBC_FATAL_STDERR_="1")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                      json.dumps(self._spec())],
                                     cwd=os.path.dirname(os.path.abspath(__file__)), env=env)
        return self

    def run(self):
        raise NotImplementedError

    def beat(self):
        """Child: this loop turn finished (at most one write a second)."""
        now = time.monotonic()
        if self._beat_fd is not None and now - self._last_beat >= 1.0:
            self._last_beat = now
            os.pwrite(self._beat_fd, f"{now:20.3f}".encode(), 0)

    def stuck_for(self) -> float:
        """Parent: seconds since the worker's last beat (since its start before the first)."""
        try:
            with open(self.beat_path) as f:
                last = float(f.read().strip() or 0)
        except (OSError, ValueError):
            last = 0.0
        return time.monotonic() - max(last, self._started)

    def _dump_and_kill(self, why: str):
        proc = self.proc
        sys.stderr.write(f"--- {self.name} (pid {proc.pid}) {why}; its threads:\n")
        sys.stderr.flush()
        proc.send_signal(signal.SIGUSR1)  # faulthandler prints every thread's stack
        time.sleep(2)
        proc.kill()
        proc.wait()

    def revive_if_stuck(self) -> bool:
        """Parent: a running worker that has not beaten for STUCK_S is shown, killed and
        replaced by a new incarnation. Returns whether that happened."""
        if self.proc is None or self.proc.poll() is not None or self.stop.is_set():
            return False
        stuck = self.stuck_for()
        if stuck < STUCK_S:
            return False
        self._dump_and_kill(f"made no progress for {stuck:.0f} s (a wedged client)")
        self.revivals += 1
        if self.history is not None:
            self.history.add("worker_revived", who=self.name, stuck_s=round(stuck, 1))
        self._paths()
        if isinstance(self, Probe):
            self._file, self._partial = None, ""
        self.start()
        return True

    def revive_if_crashed(self) -> bool:
        """Parent: a worker killed by a signal before the stop (librdkafka aborts on its own
        assertions, glibc on heap corruption: a crash of the client, not an answer of the
        broker) is replaced by a new incarnation, as a wedged one is; the history it wrote
        is checked like any other. A worker that ended by itself (an exception) is not:
        `finish` reports its errors. Returns whether that happened."""
        if self.proc is None or self.stop.is_set():
            return False
        code = self.proc.poll()
        if code is None or code >= 0:
            return False
        sys.stderr.write(f"--- {self.name} (pid {self.proc.pid}) died of signal {-code} "
                         "(a client crash); starting a new incarnation\n")
        sys.stderr.flush()
        self.crashes.append(-code)
        if self.history is not None:
            self.history.add("worker_crashed", who=self.name, signal=-code)
        self._paths()
        if isinstance(self, Probe):
            self._file, self._partial = None, ""
        self.start()
        return True

    def request_stop(self):
        """Parent: asks the worker to stop (finish() waits for it)."""
        self.stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def finish(self, timeout: float = 180.0):
        """Stops the worker (it flushes what it has in flight) and collects its counters and
        errors. One that does not stop in `timeout` prints its threads' stacks and is killed."""
        proc = self.proc
        assert proc is not None, f"{self.name} was never started"
        self.request_stop()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stuck = self.stuck_for()
            if stuck >= STUCK_S:
                # Wedged inside one librdkafka call since before the stop (as revive_if_stuck
                # handles between episodes; librdkafka#5456): shown and killed. Its history file holds what it
                # learned and is checked like any other; only its counters are lost.
                self._dump_and_kill(f"made no progress for {stuck:.0f} s (a wedged client) "
                                    "and did not stop")
                self.wedged_at_stop = True
                if self.history is not None:
                    self.history.add("worker_wedged_at_stop", who=self.name,
                                     stuck_s=round(stuck, 1))
                return
            self._dump_and_kill("did not stop")
            self.errors.append(f"{self.name} did not stop within {timeout}s")
        try:
            with open(self.result_path) as f:
                result = json.load(f)
        except (OSError, ValueError) as e:
            self.errors.append(f"{self.name} left no result (exit status {proc.returncode}): "
                               f"{e!r}")
            return
        self.errors += result["errors"]
        for k, v in result["counters"].items():
            setattr(self, k, v)

    def _serve(self):
        """The child's life: run until SIGTERM, then write the counters and leave."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        faulthandler.enable(all_threads=True)  # a crash (SIGABRT, SIGSEGV) shows its stacks
        self._beat_fd = os.open(self.beat_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:  # PR_SET_PDEATHSIG: stop (and flush) when the test process dies
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
        try:
            self.run()
        except Exception as e:  # surfaced by finish(): a worker must not die silently
            self.errors.append(f"{self.name} died: {e!r}")
        self.history.close()
        tmp = self.result_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"errors": self.errors,
                       "counters": {k: getattr(self, k) for k in self.COUNTERS}}, f)
        os.rename(tmp, self.result_path)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class Writer(Worker):
    COUNTERS = ("acked", "unknown")

    def __init__(self, name: str, bootstrap: str, topic: str, history: History,
                 interval: float = 0.01):
        super().__init__(name, history)
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
            self.beat()
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
    SUFFIX = ".acks"  # (partition, sent, acknowledged) lines, not history events

    def __init__(self, bootstrap: str, topic: str, partitions: int, every: float = 0.01):
        super().__init__("probe")
        self.bootstrap, self.topic, self.partitions, self.every = bootstrap, topic, partitions, every
        self.acks: dict[int, deque] = {p: deque() for p in range(partitions)}  # (sent, acked)
        self._file = None
        self._partial = ""

    # Records of a partition in flight at most: during an outage the probe stops adding to
    # them (their first acknowledgement still times the failover, as all were sent after
    # the fault began), so a long outage does not build a backlog for librdkafka to churn.
    MAX_IN_FLIGHT = 50

    def _delivered(self, err, msg):
        self._in_flight[msg.partition()] -= 1
        if err is None:
            sent = float(msg.value().decode().split(":")[1])
            self.history.add("probe", p=msg.partition(), s=sent, a=time.monotonic())

    def _read_acks(self):
        """The parent takes in what the probe process acknowledged since the last call."""
        if self._file is None:
            if not os.path.exists(self.history_path):
                return
            self._file = open(self.history_path)
        now = time.monotonic()
        while line := self._file.readline():
            if not line.endswith("\n"):  # the writer is mid-line: keep the start for later
                self._partial += line
                break
            e = json.loads(self._partial + line)
            self._partial = ""
            q = self.acks[e["p"]]
            q.append((e["s"], e["a"]))
            while q and q[0][1] < now - 300:
                q.popleft()

    def run(self):
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                             "enable.idempotence": True, "linger.ms": 0,
                             "message.timeout.ms": 120000, "retry.backoff.ms": 20,
                             "retry.backoff.max.ms": 100,
                             "topic.metadata.refresh.interval.ms": 1000})
        # One record per partition every `every` seconds, paced by the clock: `poll` returns
        # at the first delivery report, and a loop paced by it alone spun as fast as the
        # cluster acknowledged (a whole core of a 2-core machine taken from the brokers).
        self._in_flight = [0] * self.partitions
        tick = time.monotonic()
        while not self.stop.is_set():
            self.beat()
            for p in range(self.partitions):
                if self._in_flight[p] >= self.MAX_IN_FLIGHT:
                    continue
                try:
                    producer.produce(self.topic, value=f"{p}:{time.monotonic()}".encode(),
                                     partition=p, on_delivery=self._delivered)
                    self._in_flight[p] += 1
                except BufferError:
                    pass
            tick = max(tick + self.every, time.monotonic() - self.every)
            while (wait := tick - time.monotonic()) > 0:
                producer.poll(wait)
        producer.flush(30)

    def failover(self, led: set[int], killed_at: float) -> float | None:
        self._read_acks()
        firsts = [acked for p in led for sent, acked in self.acks[p] if sent > killed_at]
        return min(firsts) - killed_at if firsts else None


class Member(Worker):
    COUNTERS = ("seen", "commit_failures")

    def __init__(self, name: str, bootstrap: str, topic: str, group: str, history: History):
        super().__init__(name, history)
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
            self.beat()
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


class TxnLoop(Worker):
    """Reads `source` read_committed in group `group`, writes "<name>|t|p|o|<txn seq>" per input
    to `sink` and commits the input offsets in the same transaction."""

    COUNTERS = ("seq", "regressions", "stalls")
    # Seconds without any input before the loop's clients count as stalled and are replaced.
    STALL_S = 60.0

    def __init__(self, name: str, bootstrap: str, source: str, sink: str, history: History):
        super().__init__(name, history)
        self.bootstrap, self.source, self.sink, self.history = bootstrap, source, sink, history
        self.group = f"{name}-group"
        self.seq = 0
        self.regressions = 0
        self.stalls = 0

    def _clients(self):
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": self.name,
                             "linger.ms": 5, "transaction.timeout.ms": 20000,
                             "message.timeout.ms": 20000})
        producer.init_transactions(60)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                             "group.instance.id": f"{self.name}-member",
                             "session.timeout.ms": 10000, "isolation.level": "read_committed",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        consumer.subscribe([self.source], on_assign=self._assigned)
        return producer, consumer

    def _assigned(self, _consumer, partitions):
        self.history.add("assigned", who=self.name,
                         parts=sorted([tp.topic, tp.partition] for tp in partitions))

    def _check_positions(self, msgs):
        """Diagnostics: an input below the end of this loop's last committed transaction on
        its partition means the consumer restarted below its committed offsets (recorded as
        "regress"; the checker's (2)/(4) judge the outputs)."""
        for m in msgs:
            key = (m.topic(), m.partition())
            expected = self._committed_end.get(key)
            if expected is not None and m.offset() < expected:
                self.history.add("regress", who=self.name, t=key[0], p=key[1], o=m.offset(),
                                 expected=expected)
                self.regressions += 1
            self._committed_end.pop(key, None)

    def run(self):
        producer = consumer = None
        # (topic, partition) -> the offset after the inputs of the last committed transaction
        # not yet followed by a read of that partition.
        self._committed_end: dict[tuple[str, int], int] = {}
        last_input = time.monotonic()
        while not self.stop.is_set():
            self.beat()
            if producer is None:
                last_input = time.monotonic()
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
                if time.monotonic() - last_input > self.STALL_S:
                    # The writers add input every few ms: a consumer that got none for this
                    # long is wedged (librdkafka's group state machine after its coordinator
                    # left the metadata) or refused its start (offsets that stay unstable).
                    # What OffsetFetch says goes to the history; new clients carry on.
                    self._record_stall(consumer)
                    self.stalls += 1
                    self._committed_end.clear()
                    consumer.close()
                    producer = consumer = None
                    last_input = time.monotonic()
                continue
            last_input = time.monotonic()
            self._check_positions(msgs)
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
                for m in msgs:
                    key = (m.topic(), m.partition())
                    self._committed_end[key] = max(self._committed_end.get(key, 0),
                                                   m.offset() + 1)
            except KafkaException as e:
                err = e.args[0]
                if err.txn_requires_abort():
                    try:
                        producer.abort_transaction(30)
                        outcome = "abort"
                    except KafkaException:
                        pass
                if outcome != "abort" or not self._rewind(consumer):
                    # Fatal, retriable or timed out: the end of this transaction is unknown
                    # (or it aborted but the committed offsets could not be read). Start over
                    # with new clients: init_transactions fences this incarnation and
                    # resolves what it left open; the consumer restarts at the committed
                    # offsets.
                    self._committed_end.clear()
                    consumer.close()
                    producer = consumer = None
            self.history.add("txn", id=txn_id, outcome=outcome, outputs=outputs,
                             inputs=[[m.topic(), m.partition(), m.offset()] for m in msgs])

    def _record_stall(self, consumer: Consumer):
        try:
            parts = consumer.assignment()
            committed = consumer.committed(parts, CALL_TIMEOUT) if parts else []
            state = [[tp.partition, tp.offset, str(tp.error) if tp.error else None]
                     for tp in committed]
            self.history.add("txn_stalled", who=self.name, assigned=len(parts), committed=state)
        except KafkaException as e:
            self.history.add("txn_stalled", who=self.name, err=str(e))

    def _rewind(self, consumer: Consumer) -> bool:
        """After an abort, seeks every assigned partition back to its committed offset (the
        start of the partition where the group never committed). False when the committed
        offsets could not be read, whole or for some partition: seeking such a partition to
        0 would reprocess what committed transactions consumed, and leaving it where it is
        would skip the aborted inputs, so the caller starts over with new clients."""
        try:
            committed = consumer.committed(consumer.assignment(), CALL_TIMEOUT)
        except KafkaException as e:
            self.history.add("rewind_failed", who=self.name, err=str(e))
            return False
        failed = [[tp.partition, str(tp.error)] for tp in committed if tp.error is not None]
        if failed:
            self.history.add("rewind_failed", who=self.name, parts=failed)
            return False
        for tp in committed:
            consumer.seek(TopicPartition(tp.topic, tp.partition,
                                         tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
        return True


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


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    cls = globals()[spec["class"]]
    worker = cls.__new__(cls)
    worker.__dict__.update(spec["state"])
    worker.errors, worker.stop = [], threading.Event()
    worker.history = History(Path(worker.history_path), fresh=True)
    worker._serve()
