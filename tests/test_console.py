"""The web console (issue 13): every page in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium; nothing downloads a browser) with live data made by
confluent-kafka, and the JSON twins checked against what the clients did. Screenshots go to
tests/console/screenshots/ (git-ignored)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter as Tally
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import create_topic, make_producer, produce_all, unique_topic

SCREENSHOTS = Path(__file__).resolve().parent / "console" / "screenshots"


def browser_or_skip():
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(scripts/test installs them when run as root)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (tests/requirements.txt)")
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1100"):
        opts.add_argument(a)
    # An explicit driver path: Selenium Manager is not asked to find (or fetch) anything.
    return webdriver.Chrome(service=Service(driver), options=opts)


def api(broker, path: str):
    """(status, JSON body, server time in ms) of GET /api/...."""
    try:
        with urllib.request.urlopen(f"http://{broker.http_address}{path}", timeout=10) as r:
            timing = r.headers.get("Server-Timing", "")
            return r.status, json.loads(r.read()), float(timing.split("dur=")[1])
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), None


def wait_for(fn, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: last seen {last}")


def shot(driver, name: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def navigate(driver, element) -> None:
    """Clicks a link or button and waits until the next page replaced this one: a click
    returns before the navigation, and reading the page then races it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(ec.staleness_of(old))
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def rows(driver, table_id: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By
    out = []
    for tr in driver.find_elements(By.CSS_SELECTOR, f"table#{table_id} tbody tr"):
        out.append([td.text for td in tr.find_elements(By.TAG_NAME, "td")])
    return out


N = 300


def test_every_page_renders_live_data_from_the_clients(broker_factory):
    driver = browser_or_skip()
    from selenium.webdriver.common.by import By
    broker = broker_factory(settings={"weir.http.sample.interval.ms": "1000",
                                      "weir.metrics.lag.interval.ms": "500"})
    try:
        topic = unique_topic("orders")
        group = unique_topic("billing")
        txn_id = unique_topic("txn")
        create_topic(broker.bootstrap, topic, partitions=3, config={"retention.ms": "3600000"})
        # The sampler takes the new topic's baseline before anything is produced, so the
        # rates add up to every record.
        time.sleep(1.5)

        p = make_producer(broker.bootstrap)
        reports = produce_all(p, ({"topic": topic, "key": f"k{i}".encode(),
                                   "value": json.dumps({"n": i}).encode()} for i in range(N)))
        per_partition = Tally(part for part, _ in reports)

        tp = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id})
        tp.init_transactions(15)
        tp.begin_transaction()
        tp.produce(topic, key=b"txn", value=b"in a transaction", partition=2)
        tp.commit_transaction(15)
        per_partition[2] += 2  # the record and the commit marker

        # A live group member that consumed and committed part of the topic.
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                      "client.id": "console-test", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        c.subscribe([topic])
        consumed: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while sum(1 for _ in consumed) < 3 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            consumed[m.partition()] = m.offset() + 1
            if len(consumed) == 3 and sum(consumed.values()) > 20:
                break
        assert consumed, "the group consumed nothing"
        c.commit(offsets=[TopicPartition(topic, part, off) for part, off in consumed.items()],
                 asynchronous=False)

        # --- JSON twins against what the clients did ------------------------------------
        status, t, _ = api(broker, f"/api/topics/{topic}")
        assert status == 200
        ends = {row["partition"]: row["log_end_offset"] for row in t["partitions"]}
        assert ends == dict(per_partition), (ends, per_partition)
        hws = {row["partition"]: row["high_watermark"] for row in t["partitions"]}
        assert hws == ends
        assert {c_["name"]: c_["value"] for c_ in t["configs"]}["retention.ms"] == "3600000"
        lag = sum(hws[part] - off for part, off in consumed.items())
        g_row = [g for g in t["groups"] if g["group_id"] == group]
        assert g_row and g_row[0]["lag"] == lag and g_row[0]["members"] == 1, t["groups"]
        assert any(pr["partition"] == 2 for pr in t["producers"]), t["producers"]

        status, g, _ = api(broker, f"/api/groups/{urllib.parse.quote(group, safe='')}")
        assert status == 200
        assert g["state"] == "Stable" and len(g["members"]) == 1, g
        assert g["members"][0]["client_id"] == "console-test"
        assert g["members"][0]["assignment"] == {topic: [0, 1, 2]}
        committed = {o["partition"]: o["committed"] for o in g["offsets"]}
        assert committed == consumed
        assert g["lag"] == lag

        # The lag ring has this minute's point once a lag pass ran after the commit.
        def lag_point():
            _, g_, _ = api(broker, f"/api/groups/{urllib.parse.quote(group, safe='')}")
            hist = g_["lag_history"]
            return bool(hist) and hist[-1]["lag_records"] == lag, hist
        hist = wait_for(lag_point, "the group's lag history point")
        assert hist[-1]["timestamp_ms"] % 60_000 == 0 and hist[-1]["lag_seconds"] >= 0, hist

        status, txns, _ = api(broker, "/api/transactions")
        mine = [x for x in txns["transactions"] if x["transactional_id"] == txn_id]
        assert mine and mine[0]["state"] == "CompleteCommit", txns

        # The rates integrate to the records produced (two samples at least).
        def rates_settled():
            _, lst, _ = api(broker, f"/api/topics?q={topic}")
            _, d, _ = api(broker, f"/api/topics/{topic}")
            total = sum(r["produced_records"] for r in d["rates"]) * 1.0
            return len(lst["topics"][0]["sparkline"]) >= 3 and total >= N * 0.85, total
        total = wait_for(rates_settled, "produced rate samples")
        assert total <= (N + 1) * 1.15, total

        status, o, _ = api(broker, "/api/overview")
        assert o["topics"] >= 1 and o["partitions"] >= 3 and o["readiness"]["ready"], o
        assert o["brokers"][0]["port"] == broker.port

        # --- the pages in the browser ------------------------------------------------------
        base = f"http://{broker.http_address}"
        driver.get(base + "/")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
        assert "Ready" in driver.find_element(By.ID, "health").text
        summary = driver.find_element(By.ID, "summary").text
        assert f"Topics\n{o['topics']}" in summary, summary
        assert f"Partitions\n{o['partitions']}" in summary, summary
        chart = driver.find_element(By.CSS_SELECTOR, "figure.chart svg")
        assert int(chart.get_attribute("data-points")) >= 3
        assert driver.find_elements(By.CSS_SELECTOR, "figure.chart polyline")
        shot(driver, "overview")

        driver.get(base + "/topics")
        trs = [r for r in rows(driver, "topics") if r[0] == topic]
        assert trs and trs[0][1] == "3" and trs[0][3] == "3600000", rows(driver, "topics")
        spark = driver.find_element(By.CSS_SELECTOR, "table#topics svg.spark")
        assert int(spark.get_attribute("data-points")) >= 3
        assert spark.find_elements(By.TAG_NAME, "polyline")
        shot(driver, "topics")

        navigate(driver, driver.find_element(By.LINK_TEXT, topic))
        assert driver.find_element(By.TAG_NAME, "h1").text == topic
        parts = rows(driver, "partitions")
        assert {int(r[0]): int(r[2]) for r in parts} == dict(per_partition)
        groups = rows(driver, "groups")
        assert [group, "Stable", "1", str(len(consumed)), str(lag)] in groups, groups
        shot(driver, "topic")

        navigate(driver, driver.find_element(By.LINK_TEXT, group))
        assert driver.find_element(By.TAG_NAME, "h1").text == group
        members = rows(driver, "members")
        assert members[0][2] == "console-test" and members[0][4] == f"{topic}: 0,1,2", members
        offs = {int(r[1]): (int(r[2]), int(r[4])) for r in rows(driver, "offsets")}
        assert offs == {part: (off, hws[part] - off) for part, off in consumed.items()}
        lag_chart = driver.find_element(By.CSS_SELECTOR, "#lag-records svg")
        assert int(lag_chart.get_attribute("data-points")) >= 1
        assert lag_chart.find_elements(By.CSS_SELECTOR, "polyline, circle")
        caption = driver.find_element(By.ID, "lag-records").text
        assert "lag (records): " in caption, caption
        if lag < 1000:
            assert f"lag (records): {lag} records" in caption, caption
        shot(driver, "group")

        driver.get(base + "/groups")
        assert [group, "classic", "consumer", "Stable", "1", "1", str(lag)] in rows(driver, "groups")
        shot(driver, "groups")

        driver.get(base + "/transactions")
        trs = [r for r in rows(driver, "transactions") if r[0] == txn_id]
        assert trs and trs[0][1] == "CompleteCommit", rows(driver, "transactions")
        shot(driver, "transactions")
        c.close()
    finally:
        driver.quit()


def test_data_from_clients_is_shown_as_text_not_markup(broker_factory):
    """A group id is whatever a client chose: it must come out as text."""
    driver = browser_or_skip()
    from selenium.webdriver.common.by import By
    broker = broker_factory()
    try:
        topic = unique_topic("t")
        create_topic(broker.bootstrap, topic)
        produce_all(make_producer(broker.bootstrap), [{"topic": topic, "value": b"x"}])
        evil = "<img src=x onerror=\"document.title='pwned'\">&amp;/?#"
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": evil})
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
        c.close()
        driver.get(f"http://{broker.http_address}/groups")
        navigate(driver, driver.find_element(By.LINK_TEXT, evil))
        assert driver.find_element(By.TAG_NAME, "h1").text == evil
        # The handler would have replaced the whole title; the id is only text in it.
        assert driver.title == f"{evil} · Weir"
        assert not driver.find_elements(By.CSS_SELECTOR, "main img")
        status, g, _ = api(broker, f"/api/groups/{urllib.parse.quote(evil, safe='')}")
        assert status == 200 and g["group_id"] == evil and g["lag"] == 0
        status, e, _ = api(broker, "/api/topics/no-such-topic")
        assert status == 404 and "does not exist" in e["error"]
        shot(driver, "escaping")
    finally:
        driver.quit()


def test_the_message_browser_finds_a_record_by_key_among_100000(broker_factory):
    driver = browser_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    broker = broker_factory()
    try:
        topic = unique_topic("big")
        create_topic(broker.bootstrap, topic, partitions=3)
        n = 100_000
        p = make_producer(broker.bootstrap, **{"linger.ms": 50, "batch.num.messages": 10000})

        def message(i):
            m = {"topic": topic, "key": f"key-{i}".encode(),
                 "value": json.dumps({"i": i, "tag": "x"}).encode()}
            if i % 1000 == 0:
                m["headers"] = [("src", b"console-test")]
            return m
        reports = produce_all(p, (message(i) for i in range(n)))
        wanted = 73_519
        part, off = reports[wanted]

        # The JSON twin: the one match, found by scanning everything, said so.
        q = urllib.parse.urlencode({"from": "beginning", "key": f"key-{wanted}"})
        status, b, ms = api(broker, f"/api/topics/{topic}/messages?{q}")
        assert status == 200
        scanned = b["scanned_records"]
        found = list(b["messages"])
        while b["cursor"]:  # a slow (debug) build may spend the 2 s budget first
            assert b["stopped"] == "time_budget", b["summary"]
            c = urllib.parse.urlencode({"key": f"key-{wanted}", "cursor": b["cursor"]})
            status, b, _ = api(broker, f"/api/topics/{topic}/messages?{c}")
            scanned += b["scanned_records"]
            found += b["messages"]
        assert b["stopped"] == "end" and scanned == n, b["summary"]
        assert [(m["partition"], m["offset"], m["key"]) for m in found] == [(part, off, f"key-{wanted}")]
        assert found[0]["value_json"] and '"i": 73519' in found[0]["value"]
        print(f"first browse request: {ms:.1f} ms server time")

        # In the browser: the form, the summary line, continue until found.
        driver.get(f"http://{broker.http_address}/topics/{topic}/messages")
        # By default the last 100 records of each partition, and at most 100 shown.
        assert driver.find_element(By.ID, "scan-summary").text == (
            "scanned 100 of 300 records in 3 partitions, stopped because 100 matches were found"
            " · continue")
        assert len(rows(driver, "messages")) == 100
        Select(driver.find_element(By.NAME, "from")).select_by_value("beginning")
        driver.find_element(By.NAME, "key").send_keys(f"key-{wanted}")
        navigate(driver, driver.find_element(By.ID, "search"))
        seen = []
        for _ in range(20):
            summary = driver.find_element(By.ID, "scan-summary").text
            assert summary.startswith("scanned ") and " of " in summary and "stopped because" in summary
            seen += rows(driver, "messages")
            links = driver.find_elements(By.ID, "continue")
            if not links:
                break
            navigate(driver, links[0])
        assert "stopped because it reached the end" in summary, summary
        assert len(seen) == 1 and seen[0][0] == str(part) and seen[0][1] == str(off), seen
        assert seen[0][3] == f"key-{wanted}"
        assert '"i": 73519' in seen[0][5]
        shot(driver, "messages")

        # Headers filter and a match limit with a cursor that continues where it stopped.
        q = urllib.parse.urlencode({"from": "beginning", "partition": "0", "header": "src=console",
                                    "limit": "5"})
        _, b, _ = api(broker, f"/api/topics/{topic}/messages?{q}")
        assert b["stopped"] == "match_limit" and len(b["messages"]) == 5, b["summary"]
        expected = sorted(o for i, (pp, o) in enumerate(reports) if pp == 0 and i % 1000 == 0)
        assert [m["offset"] for m in b["messages"]] == expected[:5]
        c = urllib.parse.urlencode({"header": "src=console", "limit": "5", "cursor": b["cursor"]})
        _, b2, _ = api(broker, f"/api/topics/{topic}/messages?{c}")
        assert [m["offset"] for m in b2["messages"]] == expected[5:10]
    finally:
        driver.quit()
