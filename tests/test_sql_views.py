"""Views that are not materialized, ALTER .. RENAME TO and TRUNCATE through real PostgreSQL
clients against the real binary: psycopg (results, SQLSTATEs as psycopg's error classes)
and psql (`\\dv`, `\\d name`, command tags), records produced with confluent-kafka, and all
of it after kill -9.
"""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest

from conftest import create_topic, make_producer, produce_all, unique_topic
from test_sql_ddl import command, wait_rows
from test_sql_joins import psql
from test_sql_tables import connect


def order(i: int) -> dict:
    return {"id": i, "customer": f"c{i % 4}", "amount": i % 7}


def produce(broker, topic: str, ids: range):
    p = make_producer(broker.bootstrap)
    produce_all(p, [{"topic": topic, "key": str(i).encode(), "value": json.dumps(order(i)).encode()}
                    for i in ids])


def expected(ids: range) -> list[list[str]]:
    per: dict[str, list[int]] = {}
    for i in ids:
        o = order(i)
        if o["amount"] > 2:
            per.setdefault(o["customer"], []).append(o["amount"])
    return sorted([c, str(len(a)), str(sum(a))] for c, a in per.items())


def psql_raw(broker, *args: str) -> subprocess.CompletedProcess:
    dsn = f"postgresql://psql@127.0.0.1:{broker.sql_port}/weir"
    return subprocess.run(["psql", dsn, "-X", *args], capture_output=True, text=True, timeout=60)


def test_views_psql_catalog_rename_and_kill9(broker):
    topic = unique_topic("orders")
    create_topic(broker.bootstrap, topic, partitions=3)
    produce(broker, topic, range(0, 40))
    psql(broker, "CREATE SOURCE orders (id BIGINT, customer VARCHAR, amount BIGINT) "
                 f"WITH (topic = '{topic}', format = 'json')")
    assert command(broker, "CREATE VIEW big (oid, who, amt) AS "
                           "SELECT id, customer, amount FROM orders WHERE amount > 2") \
        == "CREATE VIEW"
    assert command(broker, "CREATE VIEW per_who AS SELECT who, count(*) AS n, sum(amt) AS total "
                           "FROM big GROUP BY who") == "CREATE VIEW"
    assert psql(broker, "SELECT * FROM per_who") == expected(range(0, 40))
    psql(broker, "CREATE MATERIALIZED VIEW per_who_mv AS SELECT * FROM per_who")
    wait_rows(broker, "SELECT * FROM per_who_mv", expected(range(0, 40)))

    # psql's catalog commands: \dv lists views, \d describes one.
    out = psql_raw(broker, "-At", "-c", "\\dv")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["public|big|view|weir", "public|per_who|view|weir"]
    out = psql_raw(broker, "-c", "\\d big")
    assert out.returncode == 0, out.stderr
    assert 'View "public.big"' in out.stdout, out.stdout
    for column in ("oid", "who", "amt"):
        assert column in out.stdout, out.stdout
    assert psql(broker, "SHOW VIEWS")[0][0] == "big"
    shown = psql(broker, "SHOW CREATE VIEW big")
    assert shown[0][1].startswith("CREATE VIEW big (oid, who, amt) AS SELECT"), shown

    # SQLSTATEs as psycopg's error classes.
    with connect(broker) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg.errors.DuplicateTable):
            cur.execute("CREATE VIEW big AS SELECT 1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            cur.execute("CREATE VIEW v AS SELECT * FROM missing")
        with pytest.raises(psycopg.errors.WrongObjectType):
            cur.execute("DELETE FROM big")
        with pytest.raises(psycopg.errors.WrongObjectType):
            cur.execute("TRUNCATE big")
        with pytest.raises(psycopg.errors.DuplicateTable):
            cur.execute("ALTER VIEW big RENAME TO per_who")
        with pytest.raises(psycopg.errors.WrongObjectType):
            cur.execute("ALTER MATERIALIZED VIEW big RENAME TO x")
        with pytest.raises(psycopg.errors.UndefinedTable):
            cur.execute("ALTER SOURCE nope RENAME TO x")
        # The connection keeps working, and a view reads like a table.
        cur.execute("SELECT who, n FROM per_who WHERE who = %s", ("c1",))
        assert cur.fetchall() == [(r[0], int(r[1])) for r in expected(range(0, 40))
                                  if r[0] == "c1"]

    # Renames: the source under its readers, the view under the materialized view.
    assert command(broker, "ALTER SOURCE orders RENAME TO purchases") == "ALTER SOURCE"
    assert command(broker, "ALTER VIEW big RENAME TO large") == "ALTER VIEW"
    assert command(broker, "ALTER MATERIALIZED VIEW per_who_mv RENAME TO who_mv") \
        == "ALTER MATERIALIZED VIEW"
    shown = psql(broker, "SHOW CREATE VIEW per_who")
    assert "FROM large AS big" in shown[0][1], shown
    produce(broker, topic, range(40, 60))
    wait_rows(broker, "SELECT * FROM who_mv", expected(range(0, 60)))
    assert psql(broker, "SELECT * FROM per_who") == expected(range(0, 60))

    # After kill -9: views, renames and the pipeline as they were.
    broker.kill9()
    broker.start()
    wait_rows(broker, "SELECT * FROM per_who", expected(range(0, 60)))
    produce(broker, topic, range(60, 80))
    wait_rows(broker, "SELECT * FROM who_mv", expected(range(0, 80)))
    described = psql(broker, "DESCRIBE who_mv")
    assert ["topic", "", "", "per_who_mv"] in described, described
    out = psql_raw(broker, "-At", "-c", "\\dv")
    assert sorted(out.stdout.split()) == ["public|large|view|weir", "public|per_who|view|weir"]
    assert command(broker, "DROP VIEW large CASCADE") == "DROP VIEW"
    assert psql(broker, "SHOW VIEWS") == []
    assert psql(broker, "SHOW MATERIALIZED VIEWS") == []


def test_truncate_table_through_psql(broker):
    topic = unique_topic("users")
    create_topic(broker.bootstrap, topic, partitions=2)
    psql(broker, "CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR) "
                 f"WITH (topic = '{topic}', format = 'json')")
    psql(broker, "INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'ann')")
    psql(broker, "CREATE MATERIALIZED VIEW per_name AS "
                 "SELECT name, count(*) AS n FROM users GROUP BY name")
    wait_rows(broker, "SELECT * FROM per_name", [["ann", "2"], ["bob", "1"]])
    assert command(broker, "TRUNCATE TABLE users") == "TRUNCATE TABLE"
    assert psql(broker, "SELECT * FROM users") == []
    wait_rows(broker, "SELECT * FROM per_name", [])
    psql(broker, "INSERT INTO users VALUES (4, 'cy')")
    wait_rows(broker, "SELECT * FROM per_name", [["cy", "1"]])
    out = psql_raw(broker, "-c", "TRUNCATE per_name")
    assert out.returncode != 0 and "not a table" in out.stderr, out


def test_create_or_replace_view(broker):
    """PostgreSQL's CREATE OR REPLACE VIEW: columns kept (new ones at the end), readers that
    are views see the new query, pipelines built on the view refuse it; kept after kill -9."""
    topic = unique_topic("orders")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce(broker, topic, range(0, 30))
    psql(broker, "CREATE SOURCE orders (id BIGINT, customer VARCHAR, amount BIGINT) "
                 f"WITH (topic = '{topic}', format = 'json')")
    psql(broker, "CREATE VIEW v AS SELECT id, customer FROM orders WHERE amount > 2")
    psql(broker, "CREATE VIEW w AS SELECT * FROM v")
    assert command(broker, "CREATE OR REPLACE VIEW v AS SELECT id, customer, amount "
                           "FROM orders WHERE amount > 5") == "CREATE VIEW"
    want = sorted([str(i), order(i)["customer"], str(order(i)["amount"])]
                  for i in range(0, 30) if order(i)["amount"] > 5)
    assert psql(broker, "SELECT * FROM v") == want
    # A reader's `*` takes the added column; its stored columns follow (\d w).
    assert psql(broker, "SELECT * FROM w") == want
    out = psql_raw(broker, "-c", "\\d w")
    assert out.returncode == 0, out.stderr
    assert "amount" in out.stdout, out.stdout
    # OR REPLACE of a name not taken creates the view.
    assert command(broker, "CREATE OR REPLACE VIEW fresh AS SELECT id FROM orders") \
        == "CREATE VIEW"

    with connect(broker) as conn, conn.cursor() as cur:
        for sql in ("CREATE OR REPLACE VIEW v AS SELECT id FROM orders",
                    "CREATE OR REPLACE VIEW v AS SELECT id, customer AS who, amount FROM orders",
                    "CREATE OR REPLACE VIEW v AS SELECT id, amount AS customer, amount "
                    "FROM orders"):
            with pytest.raises(psycopg.errors.InvalidTableDefinition) as e:
                cur.execute(sql)
            assert e.value.sqlstate == "42P16", sql
        with pytest.raises(psycopg.errors.InvalidObjectDefinition):
            cur.execute("CREATE OR REPLACE VIEW v AS SELECT id, customer, amount FROM w")
        with pytest.raises(psycopg.errors.WrongObjectType):
            cur.execute("CREATE OR REPLACE VIEW orders AS SELECT 1 AS id")
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            cur.execute("CREATE OR REPLACE MATERIALIZED VIEW m AS SELECT id FROM orders")
        assert "another name" in str(e.value)
        # A materialized view built on w (so on v) refuses the replacement, naming it.
        cur.execute("CREATE MATERIALIZED VIEW m AS SELECT customer, count(*) AS n FROM w "
                    "GROUP BY customer")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist) as e:
            cur.execute("CREATE OR REPLACE VIEW v AS SELECT id, customer, amount, 1 AS one "
                        "FROM orders")
        assert "materialized view m" in str(e.value), e.value
        cur.execute("SELECT count(*) FROM v")
        assert cur.fetchone() == (len(want),)

    broker.kill9()
    broker.start()
    wait_rows(broker, "SELECT * FROM w", want)
    shown = psql(broker, "SHOW CREATE VIEW v")
    assert "amount > 5" in shown[0][1], shown


def test_materialized_view_state_ttl_option(broker):
    """CREATE MATERIALIZED VIEW .. WITH (state_ttl = ..): over the session's setting, shown by
    SHOW CREATE and DESCRIBE, bounding the view's state, and kept after kill -9."""
    topic = unique_topic("ev")
    create_topic(broker.bootstrap, topic, partitions=1)
    psql(broker, "CREATE SOURCE ev (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - "
                 f"INTERVAL '1' SECOND) WITH (topic = '{topic}', format = 'json')")
    per_id = "SELECT id, count(*) AS n FROM ev GROUP BY id"
    # The view's own option wins over the session's ('none' included).
    assert command(broker, "SET streaming.state_ttl = '1 hour'; CREATE MATERIALIZED VIEW "
                           f"ttl WITH (state_ttl = '5 seconds') AS {per_id}") \
        .endswith("CREATE MATERIALIZED VIEW")
    assert command(broker, "SET streaming.state_ttl = '1 hour'; CREATE MATERIALIZED VIEW "
                           f"keep WITH (state_ttl = 'none') AS {per_id}") \
        .endswith("CREATE MATERIALIZED VIEW")
    with connect(broker) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            cur.execute(f"CREATE MATERIALIZED VIEW bad WITH (state_ttl = 'soon') AS {per_id}")
        with pytest.raises(psycopg.errors.SyntaxError) as e:
            cur.execute(f"CREATE MATERIALIZED VIEW bad WITH (ttl = '5 s') AS {per_id}")
        assert "state_ttl" in str(e.value)

    def described(view):
        return {r[0]: r[3] for r in psql(broker, f"DESCRIBE {view}")}

    def state_bytes(view):
        return int(described(view)["state bytes"].split()[0])

    assert described("ttl")["state ttl"] == "5 seconds"
    assert "WITH (state_ttl = '5 seconds') AS" in psql(broker, "SHOW CREATE ttl")[0][1]
    # Two rows a second, each id new: without a TTL every group stays.
    for chunk in range(4):
        values = ", ".join(f"({i}, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL '{i // 2}' SECOND)"
                           for i in range(chunk * 500, (chunk + 1) * 500))
        psql(broker, f"INSERT INTO ev (id, ts) VALUES {values}")
    want = [[str(i), "1"] for i in range(2000)]
    wait_rows(broker, "SELECT id, n FROM keep", sorted(want))
    wait_rows(broker, "SELECT id, n FROM ttl", sorted(want))
    import time
    deadline = time.monotonic() + 30
    while not (state_bytes("ttl") * 10 < state_bytes("keep")):
        assert time.monotonic() < deadline, (state_bytes("ttl"), state_bytes("keep"))
        time.sleep(0.2)
    print(f"state bytes: ttl {state_bytes('ttl')}, keep {state_bytes('keep')}")

    broker.kill9()
    broker.start()
    wait_rows(broker, "SELECT count(*) FROM ttl", [["2000"]])
    assert described("ttl")["state ttl"] == "5 seconds"
    assert "WITH (state_ttl = '5 seconds') AS" in psql(broker, "SHOW CREATE ttl")[0][1]
