"""Exactly-once of every kind of pipeline on a 3-broker cluster while the broker that runs the
SQL engine is lost (design stream-sql.md §14): the ten pipelines of test_sql_eos.py (upsert
sink, updating view, interval join, stream-table join, top-N, dedup, EMIT ON WINDOW CLOSE
sink, HOP window, and over the updating view an aggregate view and an upsert sink FROM it) over sources whose partitions are replicated three times and led by
different brokers, defined through a broker that does not host the engine (its connection is
forwarded), while a producer keeps writing. The engine's host (the leader of the catalog's
partition 0) is killed with -9 twice and stopped with SIGTERM once, at seeded random moments
(WEIR_EOS_SEED replays one), and restarted each time; another broker takes the engine over.
Once the producer stops and far-future rows close every window, each pipeline read through any
broker (views with psycopg, sinks and changelog topics with a read_committed consumer) must
equal the same query run as a batch over what the topics hold: nothing lost, nothing twice.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter

import pytest

from conftest import ClusterBrokers, create_topic, make_producer, unique_topic
from test_sql_eos import (EV_PARTS, FAR, PAY_PARTS, PIPELINES, Producer, answers, describe,
                          results, stamp)
from test_sql_tables import connect

CATALOG = "__weir_sql_catalog"


def sql_host(cluster: ClusterBrokers, timeout: float = 60.0):
    """The broker leading the catalog's partition 0 (the engine's host) as a live broker sees
    it, once every live broker agrees."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        live = [b for b in cluster.nodes if b.alive()]
        try:
            views = {cluster.leaders(b).get((CATALOG, 0), (-1, False))[0] for b in live}
        except Exception as e:  # a broker that is starting
            last = e
            time.sleep(0.3)
            continue
        last = views
        if len(views) == 1:
            leader = views.pop()
            if leader > 0 and cluster.nodes[leader - 1].alive():
                return cluster.nodes[leader - 1]
        time.sleep(0.3)
    raise AssertionError(f"no SQL host within {timeout}s (last: {last})\n" + cluster.log_tail(40))


def test_pipelines_exactly_once_across_loss_of_the_sql_host(tmp_path):
    seed = int(os.environ.get("WEIR_EOS_SEED", random.randrange(1 << 32)))
    print(f"WEIR_EOS_SEED={seed}")
    rng = random.Random(seed)
    cluster = ClusterBrokers(tmp_path, 3, settings={"weir.sql.checkpoint.interval.ms": "300"},
                             name="sqlc").start()
    try:
        run(cluster, rng, seed)
    finally:
        cluster.kill_all()


def run(cluster: ClusterBrokers, rng: random.Random, seed: int):
    boot = cluster.bootstrap
    topics = {"ev": unique_topic("ev"), "pay": unique_topic("pay"),
              "dims": unique_topic("dims"), "agg_out": unique_topic("agg"),
              "win_out": unique_topic("win"), "copy_out": unique_topic("copy")}
    create_topic(boot, topics["ev"], partitions=EV_PARTS)
    create_topic(boot, topics["pay"], partitions=PAY_PARTS)
    create_topic(boot, topics["dims"], partitions=2, config={"cleanup.policy": "compact"})
    create_topic(boot, topics["agg_out"], partitions=2)
    create_topic(boot, topics["win_out"], partitions=2)
    create_topic(boot, topics["copy_out"], partitions=2, config={"cleanup.policy": "compact"})
    cluster.wait_settled()

    # The first statement creates the catalog (replicated); then find its host and define
    # the pipelines through another broker.
    with connect(cluster.nodes[0], timeout=90.0) as conn, conn.cursor() as cur:
        cur.execute("SHOW SOURCES")
    host = sql_host(cluster)
    other = next(b for b in cluster.nodes if b is not host)
    md = cluster.leaders(other)
    assert len({md[(topics["ev"], p)][0] for p in range(EV_PARTS)}) > 1, \
        f"the source's partitions should be led by several brokers: {md}"
    with connect(other, timeout=60.0) as conn, conn.cursor() as cur:
        cur.execute("CREATE SOURCE ev (id BIGINT NOT NULL, k VARCHAR, v BIGINT, ts TIMESTAMP, "
                    "WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
                    f"WITH (topic = '{topics['ev']}', watermark.idle.timeout = '600s')")
        cur.execute("CREATE SOURCE pay (pid BIGINT NOT NULL, eid BIGINT, amount BIGINT, "
                    "ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '10' SECOND) "
                    f"WITH (topic = '{topics['pay']}', watermark.idle.timeout = '600s')")
        cur.execute("CREATE TABLE dims (k VARCHAR PRIMARY KEY, name VARCHAR) "
                    f"WITH (topic = '{topics['dims']}', format = 'json')")
        for sql in PIPELINES.values():
            cur.execute(sql.format(**topics))

    producer = Producer(boot, topics, seed)
    producer.start()
    for n, how in enumerate(["kill9", "sigterm", "kill9"]):
        time.sleep(rng.uniform(1.0, 4.0))
        host = sql_host(cluster)
        if how == "kill9":
            host.kill9()
        else:
            assert host.stop(30) == 0, host.log_tail(40)  # SIGTERM
        new = sql_host(cluster, timeout=90.0)
        assert new is not host
        print(f"{how} of the SQL host node {cluster.nodes.index(host) + 1} after chunk "
              f"{producer.chunks}; node {cluster.nodes.index(new) + 1} hosts the engine")
        time.sleep(rng.uniform(0.0, 2.0))
        host.start()
    time.sleep(rng.uniform(0.5, 2.0))
    producer.stop.set()
    producer.join(240)
    assert producer.error is None, producer.error
    print(f"{producer.chunks} chunks produced, {producer.failed} records not acknowledged")

    p = make_producer(boot)
    for part in range(EV_PARTS):
        p.produce(topics["ev"], partition=part, value=json.dumps(
            {"id": 10**9 + part, "k": "zz", "v": 0, "ts": stamp(FAR)}))
    for part in range(PAY_PARTS):
        p.produce(topics["pay"], partition=part, value=json.dumps(
            {"pid": 10**9 + part, "eid": -1, "amount": 0, "ts": stamp(FAR)}))
    assert p.flush(60) == 0

    # Read through a broker that does not host the engine.
    host = sql_host(cluster)
    reader = next(b for b in cluster.nodes if b is not host)
    with connect(reader, timeout=90.0) as conn, conn.cursor() as cur:
        want = answers(cur)
        assert len(want["closed"]) > 50 and len(want["paid"]) > 50, want["closed"][:3]
        deadline = time.monotonic() + 180
        while True:
            got = results(cluster, cur, topics)
            wrong = [name for name in want if got[name] != want[name]]
            if not wrong or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        time.sleep(1.5)
        got = results(cluster, cur, topics)
        wrong = [name for name in want if got[name] != want[name]]
        report = []
        for name in wrong:
            g, w = got[name], want[name]
            if isinstance(w, dict):
                diff = sorted(set(g.items()) ^ set(w.items()), key=repr)[:6]
            else:
                cg, cw = Counter(g), Counter(w)
                diff = [("extra", r) for r in (cg - cw)][:3] + [("missing", r)
                                                                 for r in (cw - cg)][:3]
            report.append(f"{name}: {len(g)} rows, want {len(w)}; {diff}")
        statuses = {name: describe(cur, name).get("status") for name in PIPELINES}
        late = {name: describe(cur, name).get("rows late (dropped)") for name in PIPELINES}
    assert not report, f"seed {seed}, late {late}:\n" + "\n".join(report) + "\n" + \
        cluster.log_tail(30)
    assert set(statuses.values()) == {"running"}, statuses
    assert set(late.values()) <= {"0", None}, late


pytestmark = pytest.mark.timeout(900)
