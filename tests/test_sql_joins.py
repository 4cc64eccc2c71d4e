"""Stream joins over the real binary, driven by psql: confluent-kafka producers feed an
`orders` source and a `customers` source; psql creates a view joining the orders stream with
a keyed table over customers (each name's latest region: a table whose rows are updated as
producers send new profiles) and a view of the plain stream-stream inner join. Each view,
queried with psql, must equal the answer computed here from what was produced, before and
after more profile updates (which retract and re-emit the joined rows) and a broker restart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from conftest import create_topic, make_producer, produce_all, unique_topic

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")


def psql(broker, sql: str) -> list[list[str]]:
    dsn = f"postgresql://psql@127.0.0.1:{broker.sql_port}/weir"
    out = subprocess.run(["psql", dsn, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "|",
                          "-c", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return sorted(line.split("|") for line in out.stdout.splitlines() if line)


def order(i: int) -> dict:
    return {"id": i, "customer": f"c{i % 6}", "amount": i % 9 + 1}


def profile(version: int, name: int) -> dict:
    # Regions move "up" with each version, so the table's max(region) changes per name.
    return {"name": f"c{name}", "region": f"r{version + name % 2}", "version": version}


def expected(orders: list[dict], profiles: list[dict]):
    latest = {}
    for p in profiles:
        latest[p["name"]] = max(latest.get(p["name"], ""), p["region"])
    by_region: dict = {}
    for o in orders:
        region = latest.get(o["customer"], "")  # psql prints NULL as empty
        n, total = by_region.get(region, (0, 0))
        by_region[region] = (n + 1, total + o["amount"])
    grouped = sorted([r, str(n), str(t)] for r, (n, t) in by_region.items())
    inner = sorted([str(o["id"]), p["region"], str(p["version"])]
                   for o in orders for p in profiles if p["name"] == o["customer"])
    return grouped, inner


def wait_for(broker, sql: str, want, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        got = psql(broker, sql)
        if got == want:
            return
        assert time.monotonic() < deadline, f"{sql}:\n got  {got}\n want {want}"
        time.sleep(0.3)


def test_stream_joined_with_a_table_fed_by_producers(broker):
    orders_topic, customers_topic = unique_topic("orders"), unique_topic("customers")
    create_topic(broker.bootstrap, orders_topic, partitions=3)
    create_topic(broker.bootstrap, customers_topic, partitions=2)
    producer = make_producer(broker.bootstrap)

    def send(topic, rows, key):
        produce_all(producer, [{"topic": topic, "key": str(r[key]).encode(),
                                "value": json.dumps(r).encode()} for r in rows])

    orders = [order(i) for i in range(60)]
    # Names c0..c3 have profiles (c4, c5 stay unmatched: NULL region in the left join).
    profiles = [profile(1, n) for n in range(4)]
    send(orders_topic, orders, "id")
    send(customers_topic, profiles, "name")
    psql(broker, f"CREATE SOURCE orders (id BIGINT NOT NULL, customer VARCHAR, amount BIGINT) "
                 f"WITH (topic = '{orders_topic}')")
    psql(broker, f"CREATE SOURCE customers (name VARCHAR, region VARCHAR, version BIGINT) "
                 f"WITH (topic = '{customers_topic}')")
    psql(broker, "CREATE MATERIALIZED VIEW by_region AS SELECT c.region, count(*) AS n, "
                 "sum(o.amount) AS total FROM orders o LEFT JOIN "
                 "(SELECT name, max(region) AS region FROM customers GROUP BY name) c "
                 "ON o.customer = c.name GROUP BY c.region")
    psql(broker, "CREATE MATERIALIZED VIEW enriched AS SELECT o.id, c.region, c.version "
                 "FROM orders o JOIN customers c ON o.customer = c.name")
    grouped, inner = expected(orders, profiles)
    wait_for(broker, "SELECT * FROM by_region", grouped)
    wait_for(broker, "SELECT * FROM enriched", inner)

    # Table updates: new profiles move names to other regions (retracting and re-emitting
    # their joined orders) and give c4 one; more orders arrive.
    more = [profile(2, n) for n in (0, 1, 4)]
    profiles += more
    send(customers_topic, more, "name")
    new_orders = [order(i) for i in range(60, 90)]
    orders += new_orders
    send(orders_topic, new_orders, "id")
    grouped, inner = expected(orders, profiles)
    wait_for(broker, "SELECT * FROM by_region", grouped)
    wait_for(broker, "SELECT * FROM enriched", inner)

    # A restart: state comes back from the checkpoint; input sent meanwhile is joined once.
    broker.restart()
    more = [profile(3, n) for n in (1, 5)]
    profiles += more
    send(customers_topic, more, "name")
    new_orders = [order(i) for i in range(90, 120)]
    orders += new_orders
    send(orders_topic, new_orders, "id")
    grouped, inner = expected(orders, profiles)
    wait_for(broker, "SELECT * FROM by_region", grouped)
    wait_for(broker, "SELECT * FROM enriched", inner)
    assert psql(broker, "SHOW MATERIALIZED VIEWS") == [
        ["by_region", "by_region", "json", "running"],
        ["enriched", "enriched", "json", "running"],
    ]
