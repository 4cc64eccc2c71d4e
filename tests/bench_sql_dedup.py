"""Events per second of one source's pipeline with and without ROW_NUMBER deduplication.

Not a test (pytest does not collect it): a measurement, printed, never asserted. It starts
`weir serve` (WEIR_BIN) on a temporary directory, writes N JSON events to a one-partition topic
(one in ten a duplicate of an earlier id, event times in order within a 5 s watermark delay),
then times, one after the other on the same input, from CREATE until the committed offset
reaches the end:

- plain: `SELECT id, k, v, ts FROM ev` (a stateless view);
- dedup: `... (SELECT .., ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts) AS rn FROM ev)
  WHERE rn = 1`, with its state bytes (every distinct id is kept: nothing frees it);
- dedup_window: the same per id and 10 s TUMBLE window (`PARTITION BY id, window_start`): an
  id's entry is freed once the watermark passes its window's end (duplicates across a
  window boundary are kept, one per window);
- dedup_ttl: `dedup` under `SET streaming.state_ttl = '10 seconds'` (event time): an id's
  entry is dropped once idle that long;
- dedup_source: `SELECT id, k, v, ts FROM ev_dd`, where source `ev_dd` reads the same topic
  `WITH (dedup.key = 'id', dedup.within = '10 seconds')`: the shorthand, its entries freed
  once the watermark passes first sighting + 10 s.

    WEIR_BIN=.bin/weir ~/.cache/weir-venv/bin/python tests/bench_sql_dedup.py [N]
"""

import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402

from conftest import Broker, create_topic, make_producer, produce_all, unique_topic  # noqa: E402

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)

DEDUP = ("SELECT id, k, v, ts FROM (SELECT id, k, v, ts, ROW_NUMBER() OVER "
         "(PARTITION BY id ORDER BY ts) AS rn FROM ev) t WHERE rn = 1")

QUERIES = {
    "plain": "SELECT id, k, v, ts FROM ev",
    "dedup": DEDUP,
    "dedup_window": "SELECT id, window_start, k, v, ts FROM (SELECT id, k, v, ts, window_start, "
                    "ROW_NUMBER() OVER (PARTITION BY id, window_start ORDER BY ts) AS rn "
                    "FROM TUMBLE(ev, ts, INTERVAL '10' SECOND)) t WHERE rn = 1",
    "dedup_ttl": DEDUP,
    "dedup_source": "SELECT id, k, v, ts FROM ev_dd",
}

# Session settings per query, set before its CREATE and reset after.
SETTINGS = {"dedup_ttl": ("streaming.state_ttl", "10 seconds")}


def describe(cur, name: str) -> dict:
    cur.execute(f"DESCRIBE {name}")
    return {r[0]: r[3] for r in cur.fetchall()}


def run(cur, name: str, query: str, topic: str, end: int) -> tuple[float, dict]:
    started = time.monotonic()
    cur.execute(f"CREATE MATERIALIZED VIEW {name} AS {query}")
    key = f"source {topic}-0"
    while True:
        info = describe(cur, name)
        done = info.get(key, "").removeprefix("committed offset ")
        if done and int(done) >= end:
            return time.monotonic() - started, info
        time.sleep(0.05)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    work = Path(tempfile.mkdtemp(prefix="weir-bench-dedup-"))
    # Commits every 100 ms: "caught up" is seen at most that late.
    broker = Broker(work / "data", work,
                    settings={"weir.sql.checkpoint.interval.ms": "100"}).start()
    try:
        topic = unique_topic("ev")
        create_topic(broker.bootstrap, topic, 1)
        events = []
        for i in range(n):
            ident = i - 7 if i % 10 == 9 else i  # one in ten repeats an earlier id
            ts = BASE + timedelta(milliseconds=i)
            events.append({"topic": topic, "value": json.dumps(
                {"id": ident, "k": f"k{i % 100}", "v": i,
                 "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")}).encode()})
        t0 = time.monotonic()
        produce_all(make_producer(broker.bootstrap, **{"linger.ms": 20}), events, timeout=300)
        print(f"produced {n} events in {time.monotonic() - t0:.1f}s")
        with psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="bench",
                             dbname="weir", autocommit=True, prepare_threshold=None) as conn, \
                conn.cursor() as cur:
            cur.execute("CREATE SOURCE ev (id BIGINT NOT NULL, k VARCHAR, v BIGINT, "
                        "ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
                        f"WITH (topic = '{topic}')")
            cur.execute("CREATE SOURCE ev_dd (id BIGINT NOT NULL, k VARCHAR, v BIGINT, "
                        "ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
                        f"WITH (topic = '{topic}', dedup.key = 'id', "
                        "dedup.within = '10 seconds')")
            for round_ in range(2):
                for kind, query in QUERIES.items():
                    name = f"{kind}_{round_}"
                    setting = SETTINGS.get(kind)
                    if setting:
                        cur.execute(f"SET {setting[0]} = '{setting[1]}'")
                    took, info = run(cur, name, query, topic, n)
                    if setting:
                        cur.execute(f"SET {setting[0]} = 'none'")
                    print(f"{kind:12} round {round_}: {n / took:9.0f} events/s ({took:.2f}s), "
                          f"state {info['state bytes']}, records written "
                          f"{info['records written']}, duplicates dropped "
                          f"{info.get('rows duplicate (dropped)', 0)}")
                    cur.execute(f"DROP MATERIALIZED VIEW {name}")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
