"""The README's quick start, run as written: a topic, the Python producer of
examples/quickstart, the SQL file creating a source with a watermark and a TUMBLE view, and
the view read with psycopg. Its contents must equal the windows computed here from the
records the producer wrote (read back from the topic), so the quick start shows real results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import psycopg

from conftest import WEIR_BIN, consume_partitions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "quickstart"
CLICKS = 600


def test_the_readme_quick_start_gives_a_live_windowed_view(broker):
    readme = (ROOT / "README.md").read_text()
    for command in ("weir topic create clicks -p 3",
                    "examples/quickstart/produce_clicks.py",
                    "weir sql -f examples/quickstart/clicks.sql"):
        assert command in readme, f"the README's quick start no longer says {command!r}"

    env = {**os.environ, "WEIR_BROKERS": broker.bootstrap, "WEIR_SQL_SERVER": broker.sql_address}
    weir = [WEIR_BIN]
    subprocess.run([*weir, "topic", "create", "clicks", "-p", "3"], env=env, check=True,
                   timeout=30)
    subprocess.run([*weir, "sql", "-f", str(EXAMPLE / "clicks.sql")], env=env, check=True,
                   timeout=60)
    out = subprocess.run([sys.executable, str(EXAMPLE / "produce_clicks.py"),
                          "--bootstrap", broker.bootstrap, "--count", str(CLICKS),
                          "--rate", "2000"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"produced {CLICKS} clicks" in out.stdout, out.stdout

    # What the view must hold: every click in its 10 s window (the view updates as rows
    # arrive, so open windows count too).
    want_views: dict[tuple, int] = defaultdict(int)
    want_users: dict[tuple, set] = defaultdict(set)
    records = consume_partitions(broker.bootstrap, "clicks", range(3))
    assert sum(len(v) for v in records.values()) == CLICKS
    for msgs in records.values():
        for m in msgs:
            c = json.loads(m.value())
            t = datetime.strptime(c["ts"], "%Y-%m-%dT%H:%M:%S.%f")
            start = t.replace(second=t.second - t.second % 10, microsecond=0)
            want_views[(start, c["page"])] += 1
            want_users[(start, c["page"])].add(c["user_name"])
    want = sorted((s, p, n, len(want_users[(s, p)])) for (s, p), n in want_views.items())

    deadline = time.monotonic() + 60
    with psycopg.connect(host="127.0.0.1", port=broker.sql_port, dbname="weir",
                         autocommit=True, connect_timeout=15) as conn:
        while True:
            rows = conn.execute("SELECT window_start, page, views, visitors FROM page_views"
                                ).fetchall()
            got = sorted((s, p, int(n), int(u)) for s, p, n, u in rows)
            if got == want:
                break
            assert time.monotonic() < deadline, f"view never matched:\n{got}\nwant\n{want}"
            time.sleep(0.5)
        # Windows end 10 s after they start, as the quick start's reader sees them.
        ends = conn.execute("SELECT DISTINCT window_end - window_start FROM page_views"
                            ).fetchall()
        assert [str(e[0]) for e in ends] == ["0:00:10"], ends
