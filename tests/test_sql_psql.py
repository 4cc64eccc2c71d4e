"""The SQL listener with real PostgreSQL clients: psycopg (simple and extended protocols,
parameters, binary results), psql when installed, and `weir sql` in pipes.

Records are produced with confluent-kafka, so what SQL reads is what Kafka clients wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import psycopg
import pytest

from conftest import WEIR_BIN, create_topic, make_producer, produce_all, unique_topic


def connect(broker, **kw) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="tester", dbname="weir",
                           autocommit=True, connect_timeout=15, **kw)


def fill(broker, topic: str, rows: list[dict], partitions: int = 3):
    create_topic(broker.bootstrap, topic, partitions=partitions)
    p = make_producer(broker.bootstrap)
    produce_all(p, [{"topic": topic, "key": str(r["id"]).encode(), "value": json.dumps(r).encode()}
                    for r in rows])


ORDERS = [{"id": i, "customer": f"c{i % 4}", "amount": i * 1.5, "paid": i % 2 == 0}
          for i in range(1, 41)]


def create_orders(cur, topic: str, name: str = "orders"):
    cur.execute(f"CREATE SOURCE {name} (id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE, "
                f"paid BOOLEAN) INCLUDE partition INCLUDE offset "
                f"WITH (topic = '{topic}', format = 'json')")


def test_select_filters_aggregates_and_limit(broker):
    topic = unique_topic("orders")
    fill(broker, topic, ORDERS)
    with connect(broker) as conn, conn.cursor() as cur:
        create_orders(cur, topic)
        cur.execute("SELECT count(*), sum(amount), min(id), max(id) FROM orders")
        assert cur.fetchone() == (40, sum(r["amount"] for r in ORDERS), 1, 40)
        cur.execute("SELECT customer, count(*) AS n FROM orders WHERE paid GROUP BY customer "
                    "ORDER BY customer")
        want = {}
        for r in ORDERS:
            if r["paid"]:
                want[r["customer"]] = want.get(r["customer"], 0) + 1
        assert cur.fetchall() == sorted(want.items())
        cur.execute("SELECT id FROM orders LIMIT 5")
        assert len(cur.fetchall()) == 5
        # Metadata columns: every record once, each partition's offsets from 0.
        cur.execute("SELECT _partition, count(*), min(_offset), max(_offset) FROM orders "
                    "GROUP BY _partition ORDER BY _partition")
        per_partition = cur.fetchall()
        assert sum(n for _, n, _, _ in per_partition) == 40
        for _, n, lo, hi in per_partition:
            assert (lo, hi) == (0, n - 1)
        # Extended protocol with a parameter, and binary results.
        cur.execute("SELECT id, amount, customer FROM orders WHERE id = %s", (7,))
        assert cur.fetchall() == [(7, 10.5, "c3")]
        with conn.cursor(binary=True) as bcur:
            bcur.execute("SELECT id, amount, paid, customer FROM orders WHERE id <= %s ORDER BY id",
                         (2,))
            assert bcur.fetchall() == [(1, 1.5, False, "c1"), (2, 3.0, True, "c2")]


def test_insert_then_select_through_the_topic(broker):
    topic = unique_topic("ins")
    create_topic(broker.bootstrap, topic, partitions=2)
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SOURCE s (id INT NOT NULL, name VARCHAR DEFAULT 'anon', "
                    f"at TIMESTAMPTZ) INCLUDE key AS k WITH (topic = '{topic}')")
        cur.execute("INSERT INTO s (id, name, at) VALUES (1, 'a', '2024-05-01T10:00:00Z'), "
                    "(2, 'b', NULL)")
        assert cur.rowcount == 2
        cur.execute("INSERT INTO s (id) VALUES (%s)", (3,))
        cur.execute("SELECT id, name, at IS NULL FROM s ORDER BY id")
        assert cur.fetchall() == [(1, "a", False), (2, "b", True), (3, "anon", True)]
    # A Kafka consumer sees the JSON records INSERT wrote.
    from conftest import make_consumer
    c = make_consumer(broker.bootstrap, **{"group.id": unique_topic("g"),
                                           "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen = []
    import time
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            seen.append(json.loads(m.value()))
    c.close()
    assert sorted(r["id"] for r in seen) == [1, 2, 3]
    first = next(r for r in seen if r["id"] == 1)
    assert first == {"id": 1, "name": "a", "at": "2024-05-01T10:00:00Z"}


def test_errors_carry_sqlstates_and_the_connection_keeps_working(broker):
    topic = unique_topic("err")
    fill(broker, topic, ORDERS[:3], partitions=1)
    with connect(broker) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg.errors.SyntaxError) as e:
            cur.execute("SELEC 1")
        assert e.value.sqlstate == "42601"
        with pytest.raises(psycopg.errors.UndefinedTable) as e:
            cur.execute("SELECT * FROM nowhere")
        assert e.value.sqlstate == "42P01"
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            cur.execute("CREATE MATERIALIZED VIEW v AS SELECT 1")
        create_orders(cur, topic)
        with pytest.raises(psycopg.errors.DuplicateTable):
            create_orders(cur, topic)
        cur.execute("SELECT count(*) FROM orders")
        assert cur.fetchone() == (3,)


def test_show_describe_drop_and_restart_keeps_definitions(broker):
    topic = unique_topic("life")
    fill(broker, topic, ORDERS[:10])
    with connect(broker) as conn, conn.cursor() as cur:
        create_orders(cur, topic)
        cur.execute(f"CREATE SOURCE raw WITH (topic = '{topic}', format = 'bytes')")
        cur.execute(f"CREATE SOURCE guessed WITH (topic = '{topic}')")
    broker.stop()
    broker.start()
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute("SHOW SOURCES")
        assert sorted(r[0] for r in cur.fetchall()) == ["guessed", "orders", "raw"]
        cur.execute("DESCRIBE guessed")
        columns = {r[0]: r[1] for r in cur.fetchall() if r[1] is not None}
        assert columns == {"id": "bigint", "customer": "varchar", "amount": "double precision",
                           "paid": "boolean"}
        cur.execute("DESCRIBE orders")
        rows = cur.fetchall()
        assert rows[0] == ("id", "bigint", "NO", None)
        assert ("topic", None, None, topic) in rows
        cur.execute("SELECT count(*) FROM raw")
        assert cur.fetchone() == (10,)
        cur.execute("SELECT sum(id) FROM guessed")
        assert cur.fetchone() == (55,)
        cur.execute("DROP SOURCE raw")
        with pytest.raises(psycopg.errors.UndefinedTable):
            cur.execute("SELECT * FROM raw")
        cur.execute("DROP SOURCE IF EXISTS raw")
    broker.kill9()
    broker.start()
    with connect(broker) as conn, conn.cursor() as cur:
        cur.execute("SHOW SOURCES")
        assert sorted(r[0] for r in cur.fetchall()) == ["guessed", "orders"]


def test_weir_sql_in_a_pipe(broker):
    topic = unique_topic("pipe")
    fill(broker, topic, ORDERS[:4], partitions=1)
    server = ["--server", broker.sql_address]
    out = subprocess.run([WEIR_BIN, "sql", *server, "-c",
                          f"CREATE SOURCE p (id BIGINT, customer VARCHAR) WITH (topic = '{topic}'); "
                          "SELECT id, customer FROM p ORDER BY id"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "1\tc1\n2\tc2\n3\tc3\n4\tc0\n"
    assert "CREATE SOURCE" in out.stderr
    # Statements from stdin; the first error stops with exit code 1.
    out = subprocess.run([WEIR_BIN, "sql", *server], input="SELECT count(*) FROM p;\nSELECT nope;",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout == "4\n"
    assert "42703" in out.stderr or "nope" in out.stderr


def test_weir_sql_on_a_terminal_is_a_repl_with_tables(broker):
    """On a terminal (a pty here), `weir sql` prompts, continues a statement over lines,
    prints results as aligned tables with a row count, prints an error and goes on, and
    ends at end of input."""
    import pty
    import select

    server = ["--server", broker.sql_address]
    parent, child = pty.openpty()
    proc = subprocess.Popen([WEIR_BIN, "sql", *server], stdin=child, stdout=child, stderr=child,
                            close_fds=True)
    os.close(child)
    out = b""

    def read_until(marker: bytes, timeout: float = 30.0) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout
        while marker not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} in {out.decode(errors='replace')!r}"
            ready, _, _ = select.select([parent], [], [], left)
            if ready:
                try:
                    out += os.read(parent, 4096)
                except OSError:  # the pty closed: the process ended
                    break

    try:
        read_until(b"weir=> ")
        os.write(parent, b"SELECT 1 AS a,\n")
        read_until(b"weir-> ")
        os.write(parent, b"'xyz' AS longer_name UNION ALL SELECT 22, 'q';\n")
        read_until(b"(2 rows)")
        os.write(parent, b"SELEKT;\n")
        read_until(b"42601")
        os.write(parent, b"SELECT 'after' AS still;\n")
        read_until(b"(1 row)")
        os.write(parent, b"\x04")  # end of input
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    text = out.decode().replace("\r\n", "\n")
    lines = text.split("\n")
    # The terminal echoes the input lines; the table starts at its header.
    header = next(i for i, line in enumerate(lines) if line.startswith(" a  |"))
    assert lines[header] == " a  | longer_name ", lines[header - 1:header + 5]
    assert lines[header + 1] == "----+-------------", lines[header + 1]
    assert sorted(lines[header + 2:header + 4]) == [" 1  | xyz         ",
                                                    " 22 | q           "], lines
    assert lines[header + 4] == "(2 rows)", lines
    assert "still" in text and " after" in text and "(1 row)" in text


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed "
                    "(scripts/test installs postgresql-client when run as root)")
def test_psql_connects_and_queries(broker):
    topic = unique_topic("psql")
    fill(broker, topic, ORDERS[:5], partitions=1)
    dsn = f"postgresql://psql@127.0.0.1:{broker.sql_port}/weir"

    def psql(*args):
        return subprocess.run(["psql", dsn, "-X", "-v", "ON_ERROR_STOP=1", *args],
                              capture_output=True, text=True, timeout=60)

    out = psql("-c", f"CREATE SOURCE q (id BIGINT, amount DOUBLE) WITH (topic = '{topic}')")
    assert out.returncode == 0, out.stderr
    out = psql("-At", "-c", "SELECT count(*), max(amount) FROM q")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5|7.5"
    # psql's \d lists relations from pg_catalog (the queries are in
    # crates/sql/tests/catalog_queries/).
    out = psql("-At", "-c", "\\d")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "public|q|table|weir"


def test_psycopg_deallocates_its_prepared_statements_after_ddl(broker):
    """psycopg prepares a statement it ran five times and, after DDL, sends DEALLOCATE ALL
    (which failed as unsupported, so a DROP after a polled DESCRIBE raised)."""
    topic = unique_topic("orders")
    fill(broker, topic, ORDERS)
    with connect(broker) as conn, conn.cursor() as cur:
        create_orders(cur, topic)
        cur.execute("CREATE MATERIALIZED VIEW paid AS SELECT id FROM orders WHERE paid")
        for _ in range(8):
            cur.execute("DESCRIBE paid")
            cur.fetchall()
        cur.execute("DROP MATERIALIZED VIEW paid")
        cur.execute("SHOW MATERIALIZED VIEWS")
        assert cur.fetchall() == []
        for _ in range(8):
            cur.execute("SELECT count(*) FROM orders WHERE id > %s", (10,))
            assert cur.fetchone() == (30,)
        cur.execute("DROP SOURCE orders")
        cur.execute("DEALLOCATE ALL")


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_describe_commands_show_each_kind(broker):
    """\\dt lists sources and tables, \\dm materialized views, \\dv views; \\d name and
    \\d+ name describe each kind, with a table's column defaults."""
    topic = unique_topic("kinds")
    fill(broker, topic, ORDERS[:5], partitions=1)
    table_topic = unique_topic("kinds_t")
    create_topic(broker.bootstrap, table_topic, partitions=1)
    dsn = f"postgresql://psql@127.0.0.1:{broker.sql_port}/weir"

    def psql(*args):
        out = subprocess.run(["psql", dsn, "-X", "-v", "ON_ERROR_STOP=1", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (args, out.stderr)
        return out.stdout

    psql("-c", f"CREATE SOURCE s (id BIGINT, amount DOUBLE) WITH (topic = '{topic}')")
    psql("-c", "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR DEFAULT 'anon', "
               f"n INT DEFAULT 7) WITH (topic = '{table_topic}')")
    psql("-c", "CREATE MATERIALIZED VIEW mv AS SELECT id, amount FROM s WHERE id > 1")
    psql("-c", "CREATE VIEW v AS SELECT id FROM s WHERE amount > 3")

    def listed(command):
        return sorted(psql("-At", "-c", command).splitlines())

    assert listed("\\d") == ["public|mv|materialized view|weir", "public|s|table|weir",
                             "public|t|table|weir", "public|v|view|weir"]
    assert listed("\\dt") == ["public|s|table|weir", "public|t|table|weir"]
    assert listed("\\dm") == ["public|mv|materialized view|weir"]
    assert listed("\\dv") == ["public|v|view|weir"]

    out = psql("-c", "\\d t")
    assert 'Table "public.t"' in out, out
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")]
            for line in out.splitlines() if "|" in line}
    assert rows["name"][4] == "'anon'", out
    assert rows["n"][4] == "7", out
    assert rows["id"][4] == "", out
    out = psql("-c", "\\d+ t")
    assert "'anon'" in out, out
    out = psql("-c", "\\d mv")
    assert 'Materialized view "public.mv"' in out, out
    assert "amount" in out, out
    out = psql("-c", "\\d s")
    assert 'Table "public.s"' in out, out
    out = psql("-c", "\\d+ v")
    assert "View definition:" in out and "amount > 3" in out, out
    out = psql("-c", "\\d+ mv")
    assert "View definition:" in out and "id > 1" in out, out
    out = psql("-At", "-c", "SELECT matviewname, definition FROM pg_matviews")
    assert out.strip() == "mv|SELECT id, amount FROM s WHERE id > 1", out
