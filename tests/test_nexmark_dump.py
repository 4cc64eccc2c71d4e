"""`weir bench nexmark --dump DIR`: the generator's events as JSON lines, one file per source,
the input another engine reads to be compared with Weir (bench/nexmark/flink/run.py).

Checked from the files alone: the 1 : 3 : 46 mix by position, dense ids, event-time order,
the columns of bench/nexmark/sources.sql, the same bytes for the same seed, a shorter run
being a prefix of a longer one (event n depends on the seed and n only), and a clear error
for a directory that cannot be made. The Flink run itself is tried on a small dump when its
venv is installed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import WEIR_BIN, run_weir

REPO = Path(__file__).resolve().parent.parent
FLINK_PYTHON = Path.home() / ".cache/flink-venv/bin/python"

COLUMNS = {
    "person": ["id", "name", "email_address", "credit_card", "city", "state", "date_time",
               "extra"],
    "auction": ["id", "item_name", "description", "initial_bid", "reserve", "date_time",
                "expires", "seller", "category", "extra"],
    "bid": ["auction", "bidder", "price", "channel", "url", "date_time", "extra"],
}


def dump(directory, events, seed=1):
    p = run_weir("bench", "nexmark", "--events", str(events), "--seed", str(seed),
                 "--dump", str(directory), timeout=120)
    return p.stdout


def rows(directory, source):
    with open(directory / f"{source}.json") as f:
        return [json.loads(line) for line in f]


def test_dump_writes_each_source_in_order_with_its_columns(tmp_path):
    out = dump(tmp_path, 5000)
    assert "5000 events (100 persons, 300 auctions, 4600 bids" in out, out
    persons, auctions, bids = (rows(tmp_path, s) for s in ("person", "auction", "bid"))
    assert (len(persons), len(auctions), len(bids)) == (100, 300, 4600)
    for source, records in (("person", persons), ("auction", auctions), ("bid", bids)):
        for r in records:
            assert sorted(r) == sorted(COLUMNS[source]), (source, r)
        times = [r["date_time"] for r in records]
        assert times == sorted(times) and len(set(times)) == len(times), source
    # Ids are dense from 1000; bids name auctions and persons that exist or are about to.
    assert [p["id"] for p in persons] == list(range(1000, 1100))
    assert [a["id"] for a in auctions] == list(range(1000, 1300))
    assert all(1000 <= b["auction"] < 1300 + 10 for b in bids)
    assert all(1000 <= b["bidder"] < 1100 + 10 for b in bids)
    # Timestamps as the sources decode them: `YYYY-MM-DD HH:MM:SS.ffffff`.
    assert persons[0]["date_time"] == "2026-01-01 00:00:00.000000"
    assert auctions[0]["date_time"] == "2026-01-01 00:00:00.000100"
    assert all(a["expires"] > a["date_time"] for a in auctions)


def test_dump_is_reproducible_and_a_prefix_of_a_longer_run(tmp_path):
    dump(tmp_path / "a", 2000)
    dump(tmp_path / "b", 2000)
    dump(tmp_path / "long", 4000)
    dump(tmp_path / "seed2", 2000, seed=2)
    for source in COLUMNS:
        a = (tmp_path / "a" / f"{source}.json").read_bytes()
        assert a == (tmp_path / "b" / f"{source}.json").read_bytes(), source
        assert (tmp_path / "long" / f"{source}.json").read_bytes().startswith(a), source
        assert a != (tmp_path / "seed2" / f"{source}.json").read_bytes(), source


def test_dump_into_a_file_fails_with_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = run_weir("bench", "nexmark", "--events", "100", "--dump", str(blocker / "sub"),
                 check=False)
    assert p.returncode != 0
    assert "creating" in p.stderr and str(blocker / "sub") in p.stderr, p.stderr
    assert "panicked" not in p.stderr


@pytest.mark.skipif(not FLINK_PYTHON.exists(), reason="no Flink venv (~/.cache/flink-venv)")
def test_flink_runs_the_queries_over_a_dump(tmp_path):
    """bench/nexmark/flink/run.py over 2,000 events: a windowed query and a join each give a
    row with a CPU figure (the Flink side of the comparison works end to end)."""
    p = subprocess.run(
        [str(FLINK_PYTHON), str(REPO / "bench/nexmark/flink/run.py"), "--weir", WEIR_BIN,
         "--events", "2000", "--work", str(tmp_path), "--query", "q5", "--query", "q3"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    table = [line for line in p.stdout.splitlines()
             if line.startswith("| q") and not line.startswith("| query")]
    assert [line.split("|")[1].strip() for line in table] == ["q5", "q3"], p.stdout
    for line in table:
        cells = [c.strip() for c in line.split("|")]
        assert "failed" not in line, line
        # input events: q5 reads the bids (1,840 of 2,000), q3 persons and auctions (160).
        assert cells[2] == {"q5": "1,840", "q3": "160"}[cells[1]], line
        assert float(cells[4]) > 0, line
