"""Test harness: start/stop/kill `weir serve` processes and small Kafka helpers.

WEIR_BIN points at the binary (scripts/test exports it); without it the default cargo target
directory is used.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from confluent_kafka import Consumer, KafkaException, OFFSET_BEGINNING, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def weir_bin() -> str:
    b = os.environ.get("WEIR_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/weir-target"))
    return os.path.join(target, "debug", "weir")


WEIR_BIN = weir_bin()
READY_TIMEOUT = 20.0


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free right now and never handed out before in this session.

    The kernel may give the same ephemeral port to two binds in a row once the first socket is
    closed, so one broker's SQL and HTTP ports could coincide; remembering what was handed out
    rules that out."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class BrokerDied(Exception):
    pass


class Broker:
    """One `weir serve` process. restart() reuses the same port and data dir.

    `host` and `wrapper` serve the fault harness (netns.py): a broker listening on its own
    network namespace's address, started under `ip netns exec` (which execs, so the process
    signalled is the broker itself)."""

    def __init__(self, data_dir: Path, log_dir: Path, settings: dict | None = None,
                 port: int | None = None, extra_args: list[str] | None = None, name="broker",
                 host: str = "127.0.0.1", wrapper: list[str] | None = None):
        self.host = host
        self.wrapper = list(wrapper or [])
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.settings = dict(settings or {})
        self.extra_args = list(extra_args or [])
        self.port = port or free_port()
        # Every broker gets its own SQL port: the default 4566 would collide across brokers.
        self.sql_port = free_port()
        # And its own HTTP (metrics) port, for the same reason (default 9644).
        self.http_port = free_port()
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = self.log_dir / f"{name}.log"
        self._log_file = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sql_address(self) -> str:
        return f"{self.host}:{self.sql_port}"

    @property
    def http_address(self) -> str:
        return f"{self.host}:{self.http_port}"

    def argv(self) -> list[str]:
        argv = [*self.wrapper, WEIR_BIN, "serve", "--listen", self.bootstrap,
                "--data-dir", str(self.data_dir),
                "--sql-listen", self.sql_address, "--http-listen", self.http_address]
        for k, v in self.settings.items():
            argv += ["--set", f"{k}={v}"]
        return argv + self.extra_args

    def start(self, timeout: float = READY_TIMEOUT) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        # One log file across restarts, with a banner per start.
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== start #{self.starts}: {' '.join(self.argv())}\n".encode())
        self._log_file.flush()
        # The broker reads WEIR_* variables as settings: keep the harness's own out of it.
        env = {k: v for k, v in os.environ.items() if k not in ("WEIR_BIN", "WEIR_VENV")}
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=self._log_file, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerDied(f"{self.name} exited with {self.proc.returncode} before listening "
                                 f"on {self.bootstrap}\n{self.log_tail()}")
            if port_open(self.port, self.host):
                return self
            time.sleep(0.05)
        self.kill9()
        raise BrokerDied(f"{self.name} did not listen on {self.bootstrap} within {timeout}s\n"
                         f"{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code. Fails if it does not exit in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s\n{self.log_tail()}")
        self._close_log()
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_log()

    def restart(self, timeout: float = READY_TIMEOUT) -> "Broker":
        if self.alive():
            self.stop()
        # The old listener is gone; its port may take a moment to be bindable again.
        return self.start(timeout)

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def partition_dir(self, topic: str, partition: int = 0) -> Path:
        return self.data_dir / f"{topic}-{partition}"


# ---------------------------------------------------------------------------------------------
# Fixtures.

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def broker_factory(request, tmp_path):
    """start(data_dir=None, settings=None, port=None, extra_args=None, name=None) -> Broker."""
    brokers: list[Broker] = []

    def start(data_dir=None, settings=None, port=None, extra_args=None, name=None) -> Broker:
        name = name or f"broker{len(brokers)}"
        b = Broker(data_dir or tmp_path / f"{name}-data", tmp_path, settings=settings, port=port,
                   extra_args=extra_args, name=name)
        brokers.append(b)
        b.start()
        return b

    yield start

    failed = any(getattr(request.node, f"rep_{w}", None) is not None
                 and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
    for b in brokers:
        still_alive = b.alive()
        b.kill9()
        if failed:
            sys.stderr.write(f"\n{b.name} ({b.bootstrap}, alive at teardown: {still_alive})\n"
                             f"{b.log_tail(120)}\n")


@pytest.fixture
def broker(broker_factory) -> Broker:
    return broker_factory()


# ---------------------------------------------------------------------------------------------
# Kafka helpers.

def unique_topic(prefix="t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None,
                 timeout: float = 15.0):
    """Creates a topic through the admin API and waits until metadata shows all partitions."""
    admin = admin_client(bootstrap)
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                       config={k: str(v) for k, v in (config or {}).items()})],
                             request_timeout=timeout)
    fs[name].result(timeout)
    wait_for_topic(bootstrap, name, partitions, timeout, admin=admin)
    return name


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = 15.0, admin=None):
    admin = admin or admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None:
            last = sorted(t.partitions)
            if last == list(range(partitions)) and all(
                    p.leader >= 0 for p in t.partitions.values()):
                return md
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not visible with {partitions} partitions with leaders "
                         f"after {timeout}s (last partitions seen: {last})")


def topic_partition_counts(bootstrap: str) -> dict[str, int]:
    """{topic: partition count} of every topic, from a plain Metadata v1 request for all topics.

    Deliberately not a client library: test_admin covers each client's all-topics listing, and
    a quirk there should fail that test, not every test that uses this helper."""
    import kwire
    with kwire.Conn(bootstrap) as c:
        md = kwire.metadata_v1(c, None)
    return {n: parts for n, (err, parts) in md.items() if err == 0}


def make_producer(bootstrap: str, **conf) -> Producer:
    base = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}
    base.update(conf)
    return Producer(base)


def make_consumer(bootstrap: str, **conf) -> Consumer:
    base = {
        "bootstrap.servers": bootstrap,
        # group.id only because the client requires one: we assign(), never subscribe/commit.
        "group.id": "weir-tests-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
    }
    base.update(conf)
    return Consumer(base)


def watermarks(bootstrap: str, topic: str, partition: int, timeout=10.0) -> tuple[int, int]:
    c = make_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout,
                                       cached=False)
    finally:
        c.close()


def produce_all(producer: Producer, messages, timeout: float = 60.0):
    """messages: iterable of dicts of Producer.produce kwargs. Returns delivery reports in
    order of the input: list of (partition, offset). Fails on any delivery error."""
    reports: list = []
    errors: list = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                reports[i] = (msg.partition(), msg.offset())
        return cb

    for i, m in enumerate(messages):
        reports.append(None)
        while True:
            try:
                producer.produce(on_delivery=make_cb(i), **m)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(timeout)
    assert left == 0, f"{left} messages not delivered after {timeout}s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:5]}"
    assert all(r is not None for r in reports)
    return reports


def consume_partitions(bootstrap: str, topic: str, partitions, timeout: float = 30.0,
                       start=OFFSET_BEGINNING, **conf):
    """Reads every given partition from `start` up to its high watermark (taken at the start).

    Returns {partition: [Message, ...]} in log order. Fails on consumer errors or timeout.
    """
    c = make_consumer(bootstrap, **conf)
    try:
        ends = {}
        for p in partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            ends[p] = hi
        out = {p: [] for p in partitions}
        todo = {p for p in partitions if ends[p] > 0}
        if not todo:
            return out
        c.assign([TopicPartition(topic, p, start) for p in partitions])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                got = {p: (out[p][-1].offset() if out[p] else None) for p in partitions}
                raise AssertionError(f"timed out reading {topic}: ends {ends}, last read {got}")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    raise AssertionError(f"consumer error on {topic}: {m.error()}")
                p = m.partition()
                if m.offset() < ends[p]:
                    out[p].append(m)
                if m.offset() >= ends[p] - 1:
                    todo.discard(p)
        return out
    finally:
        c.close()


def run_weir(*args, input: str | None = None, timeout: float = 30.0, check=True):
    """Runs the weir CLI; returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run([WEIR_BIN, *args], input=input, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"weir {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


__all__ = [
    "Broker", "BrokerDied", "KafkaException", "OFFSET_BEGINNING", "TopicPartition",
    "admin_client", "consume_partitions", "create_topic", "free_port", "make_consumer",
    "make_producer", "produce_all", "run_weir", "topic_partition_counts", "unique_topic",
    "wait_for_topic", "watermarks", "WEIR_BIN",
]
