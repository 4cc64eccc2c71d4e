"""SQL in a cluster (design stream-sql.md §14): one engine, on the leader of
`__weir_sql_catalog` partition 0 (replicated like `__transaction_state`), reachable with psql
through every broker: a broker that does not host it forwards the connection to the one that
does, advertised as its `SQL` endpoint. kill -9 or SIGTERM of the host moves the engine with the
catalog's leadership; every definition survives. The catalog is created by the first SQL
connection (a cluster that never runs SQL keeps no topic for it). Without a host, a connection
gets SQLSTATE 57P03 and the reason.

Pipelines reading partitions led by another broker are not reachable yet (partition access over
the internal link comes separately), so these tests check definitions, not view contents.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess

import psycopg
import pytest

from cluster import Cluster, states, wait_for
from conftest import admin_client, create_topic, run_weir, unique_topic

CATALOG = "__weir_sql_catalog"
# How long a lost host may take to be replaced: the session timeout (2.5 s) fences it, the
# controller elects a new catalog leader, which replays the catalog and resumes pipelines.
FAILOVER = 45


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings={"default.replication.factor": "3",
                                    "min.insync.replicas": "2"}).start()

    def formed():
        info = c.info(1)
        return info.get("controller") and states(info) == {i: "unfenced" for i in (1, 2, 3)}

    wait_for("a controller and three unfenced brokers", formed, 60, c)
    # A cluster keeps no SQL catalog until SQL is used: the first connection creates it.
    assert catalog_partition(c, 1) is None, "a catalog before any SQL connection"
    wait_sql(c, 2, timeout=60)
    yield c
    c.kill_all()


def connect(broker) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="tester", dbname="weir",
                           autocommit=True, connect_timeout=10)


def catalog_partition(cluster: Cluster, via: int):
    """(leader, replicas) of the catalog's partition 0 as broker `via` answers Metadata; None
    while it does not exist."""
    md = admin_client(cluster.nodes[via].bootstrap).list_topics(timeout=10)
    t = md.topics.get(CATALOG)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    p = t.partitions[0]
    return p.leader, sorted(p.replicas)


def host(cluster: Cluster, via: int, not_: int | None = None) -> int:
    """The broker hosting the engine (the catalog's leader), once there is one other than
    `not_`."""
    def led():
        p = catalog_partition(cluster, via)
        return p[0] if p and p[0] > 0 and p[0] != not_ else None
    return wait_for(f"a catalog leader (not {not_})", led, FAILOVER, cluster)


def names(broker, kind: str) -> list[str]:
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"SHOW {kind}")
        return sorted(r[0] for r in cur.fetchall())


def wait_sql(cluster: Cluster, node: int, want: dict[str, list[str]] | None = None,
             timeout: float = FAILOVER):
    """Until psql through `node` answers (and lists `want`: {SHOW kind: names})."""
    def answers():
        try:
            got = {k: names(cluster.nodes[node], k) for k in (want or {"SOURCES": None})}
        except psycopg.OperationalError:
            return None
        return got if want is None or got == want else None
    return wait_for(f"SQL through node {node} listing {want}", answers, timeout, cluster)


def define(cluster: Cluster, node: int) -> dict[str, list[str]]:
    """A source, a table and a materialized view created through `node`; what SHOW lists."""
    bootstrap = cluster.nodes[node].bootstrap
    orders, users = unique_topic("orders"), unique_topic("users")
    create_topic(bootstrap, orders, partitions=2)
    create_topic(bootstrap, users, partitions=1)
    with connect(cluster.nodes[node]) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE orders (id BIGINT, amount DOUBLE) "
                    f"WITH (topic = '{orders}', format = 'json')")
        cur.execute(f"CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR) "
                    f"WITH (topic = '{users}')")
        cur.execute("CREATE MATERIALIZED VIEW big AS SELECT id, amount FROM orders "
                    "WHERE amount > 10")
    return {"SOURCES": ["orders"], "TABLES": ["users"], "MATERIALIZED VIEWS": ["big"]}


def startup_answer(port: int) -> bytes:
    """What the SQL listener answers a raw SSLRequest then startup message (up to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!ii", 8, 80877103))
        assert s.recv(1) == b"N"
        body = b"user\0tester\0database\0weir\0\0"
        s.sendall(struct.pack("!ii", 8 + len(body), 196608) + body)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out


def error_fields(answer: bytes) -> dict[str, str]:
    """The fields of one ErrorResponse, by their one-letter tags."""
    assert answer[:1] == b"E", answer
    (length,) = struct.unpack("!i", answer[1:5])
    fields = {}
    for f in answer[5:1 + length].split(b"\0"):
        if f:
            fields[chr(f[0])] = f[1:].decode()
    return fields


def test_one_engine_with_a_replicated_catalog_answers_through_every_broker(cluster):
    leader = host(cluster, 1)
    assert catalog_partition(cluster, 1)[1] == [1, 2, 3], "the catalog is replicated 3 ways"
    info = cluster.info(1)
    for i, b in cluster.nodes.items():
        assert f"SQL://127.0.0.1:{b.sql_port}" in info["brokers"][i]["endpoints"], info
        wait_sql(cluster, i)
    only_host = [i for i in (1, 2, 3)
                 if "hosting the SQL engine: this broker leads" in
                 cluster.nodes[i].log_path.read_text()]
    assert only_host == [leader], f"one engine, on the catalog's leader {leader}: {only_host}"

    other = next(i for i in (1, 2, 3) if i != leader)
    want = define(cluster, other)
    for i in (1, 2, 3):
        assert wait_sql(cluster, i, want, timeout=10) == want
        # A statement error travels back through the forwarding broker.
        with connect(cluster.nodes[i]) as conn, conn.cursor() as cur:
            with pytest.raises(psycopg.errors.DuplicateTable):
                cur.execute("CREATE SOURCE orders (id BIGINT) WITH (topic = 'x')")
    # `weir sql` through a broker that does not host the engine.
    out = run_weir("sql", "--server", cluster.nodes[other].sql_address, "-c", "SHOW SOURCES")
    assert "orders" in out.stdout, out.stdout
    # Topics the engine created get the cluster's default replication factor.
    md = admin_client(cluster.nodes[1].bootstrap).list_topics(timeout=10)
    assert sorted(md.topics["big"].partitions[0].replicas) == [1, 2, 3]


def test_the_engine_moves_with_the_catalog_on_kill_and_on_sigterm(cluster):
    first = host(cluster, 1)
    other = next(i for i in (1, 2, 3) if i != first)
    want = define(cluster, other)
    wait_sql(cluster, first, want, timeout=10)
    # A connection forwarded to the host closes when the host goes.
    forwarded = connect(cluster.nodes[other])

    cluster.nodes[first].kill9()
    survivors = [i for i in (1, 2, 3) if i != first]
    second = host(cluster, survivors[0], not_=first)
    assert second in survivors
    for i in survivors:
        wait_sql(cluster, i, want)
    with pytest.raises(psycopg.OperationalError):
        forwarded.execute("SHOW SOURCES")
    forwarded.close()

    cluster.nodes[first].start()
    wait_sql(cluster, first, want)

    # SIGTERM: the controlled shutdown moves the catalog's leadership, and the engine with it.
    assert cluster.nodes[second].stop() == 0
    rest = [i for i in (1, 2, 3) if i != second]
    third = host(cluster, rest[0], not_=second)
    assert third in rest
    for i in rest:
        wait_sql(cluster, i, want)
    cluster.nodes[second].start()
    wait_sql(cluster, second, want)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_without_a_host_connections_get_57p03_with_the_reason(tmp_path):
    c = Cluster(tmp_path)
    try:
        # One broker of three: no quorum, so it never catches up with the metadata.
        c.nodes[1].start()
        fields = error_fields(startup_answer(c.nodes[1].sql_port))
        assert fields["C"] == "57P03" and fields["S"] == "FATAL", fields
        assert "has not caught up with the cluster metadata" in fields["M"], fields
        p = subprocess.run(["psql", f"postgresql://t@127.0.0.1:{c.nodes[1].sql_port}/weir",
                            "-X", "-c", "SELECT 1"], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "has not caught up" in p.stderr, p.stderr
        p = run_weir("sql", "--server", c.nodes[1].sql_address, "-c", "SHOW SOURCES",
                     check=False)
        assert p.returncode != 0 and "has not caught up" in p.stderr, p.stderr

        # Two of three: a quorum, but the catalog waits for three brokers (its replication
        # factor), so it does not exist yet.
        c.nodes[2].start()

        def no_catalog():
            m = error_fields(startup_answer(c.nodes[2].sql_port))["M"]
            return m if "does not exist yet" in m else None
        wait_for("57P03: no catalog yet", no_catalog, 60, c)

        # The third broker: the catalog is created, and SQL answers through every broker.
        c.nodes[3].start()
        for i in (1, 2, 3):
            wait_sql(c, i, timeout=90)
        assert catalog_partition(c, 1)[1] == [1, 2, 3]
    finally:
        c.kill_all()
