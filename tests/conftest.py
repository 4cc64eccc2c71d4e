"""Test harness: start/stop/kill `weir serve` processes and small Kafka helpers.

WEIR_BIN points at the binary (scripts/test exports it); without it the default cargo target
directory is used.

WEIR_CLUSTER=3 runs the client suites against a cluster instead: the `broker` and
`broker_factory` fixtures start that many brokers (a metadata quorum of all of them) with
`default.replication.factor` = min(3, n) and `min.insync.replicas` = 2, and hand out a
`ClusterBrokers` whose `bootstrap` lists every broker. Tests marked
`@pytest.mark.single_node("why")` (they restart, kill or read the files of the one broker, or use a
single-node-only feature) skip with that reason; an unmarked test reaching for one broker's
port or files fails and says so. Killing, stopping or restarting "the broker" acts on the whole
cluster at once.
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
# Cluster mode (WEIR_CLUSTER=n).

CLUSTER_SIZE = int(os.environ.get("WEIR_CLUSTER", "0") or 0)
# Replication factor of every topic created without one (the helpers create with -1).
DEFAULT_RF = min(3, CLUSTER_SIZE) if CLUSTER_SIZE else 1
CLUSTER_FORM_TIMEOUT = 60.0


class ClusterBrokers:
    """`n` brokers forming one cluster (every one a voter), handed out by the `broker` fixture
    under WEIR_CLUSTER. `bootstrap` lists them all, so every client finds leaders and
    coordinators itself. What only makes sense for one broker process fails loudly: a test that
    needs it is marked `single_node` and skipped before it starts."""

    def __init__(self, tmp_path: Path, n: int, settings: dict | None = None, name="cluster"):
        internal = {i: free_port() for i in range(1, n + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in internal.items())
        self.nodes: list[Broker] = []
        for i in internal:
            s = {"node.id": str(i), "controller.quorum.voters": voters,
                 "default.replication.factor": str(min(3, n)),
                 "min.insync.replicas": str(min(2, n))}
            s.update(settings or {})
            self.nodes.append(Broker(tmp_path / f"{name}-node{i}-data", tmp_path, settings=s,
                                     name=f"{name}-node{i}"))
        self.name = name

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.nodes)

    @property
    def first(self) -> Broker:
        return self.nodes[0]

    def start(self) -> "ClusterBrokers":
        for b in self.nodes:
            b.start()
        self.wait_formed()
        self.wait_settled()
        return self

    def leaders(self, b: Broker) -> dict:
        """{(topic, partition): (leader, ISR is all replicas)} of every topic, internal ones
        included, as `b` sees."""
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        return {(t, p): (pm.leader, sorted(pm.isrs) == sorted(pm.replicas))
                for t, tm in md.topics.items() for p, pm in tm.partitions.items()}

    def wait_settled(self, timeout: float = CLUSTER_FORM_TIMEOUT):
        """Until every broker names the same leader for every partition, none is leaderless,
        every ISR holds all replicas, and that holds over two looks 0.5 s apart. After a
        restart the controller moves leaderships off the brokers' old registrations and
        shrinks the ISRs while clients connect: a client arriving meanwhile can be sent to a
        broker that just lost the partition, and librdkafka's watermark and committed-offset
        queries do not retry NOT_LEADER or NOT_COORDINATOR (Kafka's brokers move leaders the
        same way on a restart); a coordinator whose shard partition is below
        min.insync.replicas answers OffsetFetch COORDINATOR_NOT_AVAILABLE."""
        deadline = time.monotonic() + timeout
        last, previous = None, None
        while time.monotonic() < deadline:
            try:
                views = [self.leaders(b) for b in self.nodes]
            except KafkaException as e:
                last, previous = e, None
                time.sleep(0.2)
                continue
            agreed = all(v == views[0] for v in views) and all(
                leader >= 0 and full for leader, full in views[0].values())
            if agreed and views[0] == previous:
                return
            last, previous = views[0], (views[0] if agreed else None)
            time.sleep(0.5)
        raise BrokerDied(f"{self.name}: leaders did not settle within {timeout}s; last: {last}\n"
                         + "\n".join(b.log_tail(60) for b in self.nodes))

    def wait_formed(self, timeout: float = CLUSTER_FORM_TIMEOUT):
        """Until a controller is elected and every broker is registered and unfenced."""
        from cluster import parse_info  # cluster.py imports this module
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            p = run_weir("cluster", "info", "-b", self.first.bootstrap, timeout=30, check=False)
            if p.returncode == 0:
                info = parse_info(p.stdout)
                last = info
                if info.get("controller") and len(info["brokers"]) == len(self.nodes) and all(
                        b["state"] == "unfenced" for b in info["brokers"].values()):
                    return
            else:
                last = p.stderr
            time.sleep(0.2)
        raise BrokerDied(f"{self.name} did not form within {timeout}s; last: {last}\n"
                         + "\n".join(b.log_tail(60) for b in self.nodes))

    def alive(self) -> bool:
        return all(b.alive() for b in self.nodes)

    def kill_all(self):
        for b in self.nodes:
            b.kill9()

    # A test that crashes or restarts "the broker" does it to the whole cluster: every broker
    # at once, which is the case where only the disks keep what was acknowledged.

    def kill9(self):
        self.kill_all()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to every broker at once, then waits for each; the first non-zero exit code
        (0 when all exited cleanly)."""
        for b in self.nodes:
            if b.alive():
                b.proc.send_signal(signal.SIGTERM)
        codes = [b.stop(timeout) for b in self.nodes]
        return next((c for c in codes if c != 0), 0)

    def restart(self) -> "ClusterBrokers":
        if any(b.alive() for b in self.nodes):
            self.stop()
        return self.start()

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(b.log_tail(n) for b in self.nodes)

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        # port, data_dir, partition_dir, restart, stop, kill9, sql_address, ...: one broker's.
        pytest.fail(f"WEIR_CLUSTER: this test uses `broker.{attr}`, which a cluster does not have; "
                    "mark it @pytest.mark.single_node(\"why\") if it needs one broker")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "single_node(reason): needs one broker process (skipped under WEIR_CLUSTER)")


def pytest_runtest_setup(item):
    if CLUSTER_SIZE:
        m = item.get_closest_marker("single_node")
        if m is not None:
            pytest.skip(f"single node only: {m.args[0] if m.args else 'not said'}")


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
        if CLUSTER_SIZE:
            if data_dir is not None or port is not None or extra_args:
                pytest.fail("WEIR_CLUSTER: broker_factory got a data dir, port or arguments of "
                            "one broker; mark the test @pytest.mark.single_node(\"why\")")
            c = ClusterBrokers(tmp_path, CLUSTER_SIZE, settings, name=name)
            brokers.append(c)
            c.start()
            return c
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
        if isinstance(b, ClusterBrokers):
            b.kill_all()
        else:
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
    # -1: the broker's default.replication.factor (3 under WEIR_CLUSTER, else 1).
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=-1,
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
    "Broker", "BrokerDied", "CLUSTER_SIZE", "ClusterBrokers", "DEFAULT_RF", "KafkaException", "OFFSET_BEGINNING", "TopicPartition",
    "admin_client", "consume_partitions", "create_topic", "free_port", "make_consumer",
    "make_producer", "produce_all", "run_weir", "topic_partition_counts", "unique_topic",
    "wait_for_topic", "watermarks", "WEIR_BIN",
]
