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
    from selenium.common.exceptions import WebDriverException
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_driver) -> bool:
        # Mid-navigation chromedriver may answer about the old node with a stale-element
        # error or with "Node with given id does not belong to the document" (an "unknown
        # error"): both mean the old page is gone.
        try:
            return ec.staleness_of(old)(_driver)
        except WebDriverException:
            return True

    WebDriverWait(driver, 20).until(replaced)
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
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


# --- writes: CSRF, produce, configs, reset offsets; live tail; pipelines --------------------

def http(broker, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None):
    """(status, headers, body bytes) of one request, errors included."""
    req = urllib.request.Request(f"http://{broker.http_address}{path}", data=body,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def csrf_pair(broker) -> tuple[str, str]:
    """(cookie header value, token) from GET /api/csrf, as a script would get them."""
    status, headers, body = http(broker, "GET", "/api/csrf")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "SameSite=Strict" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
    return cookie, json.loads(body)["token"]


def log_end(broker, topic: str) -> dict[int, int]:
    _, t, _ = api(broker, f"/api/topics/{topic}")
    return {row["partition"]: row["log_end_offset"] for row in t["partitions"]}


def test_csrf_refuses_a_post_without_or_with_a_wrong_token(broker):
    topic = unique_topic("csrf")
    create_topic(broker.bootstrap, topic)
    record = json.dumps({"value": "x"}).encode()
    js = {"Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cookie, token = csrf_pair(broker)

    # JSON API: no header, a wrong token, a token without its cookie, another cookie's token.
    status, _, body = http(broker, "POST", f"/api/topics/{topic}/produce", record, js)
    assert status == 403 and "CSRF" in json.loads(body)["error"], body
    status, _, body = http(broker, "POST", f"/api/topics/{topic}/produce", record,
                           {**js, "Cookie": cookie, "X-CSRF-Token": "00" * 32})
    assert status == 403 and "does not match" in json.loads(body)["error"], body
    status, _, body = http(broker, "POST", f"/api/topics/{topic}/produce", record,
                           {**js, "X-CSRF-Token": token})
    assert status == 403 and "no CSRF cookie" in json.loads(body)["error"], body
    other_cookie, _ = csrf_pair(broker)
    assert other_cookie != cookie
    status, _, _ = http(broker, "POST", f"/api/topics/{topic}/produce", record,
                        {**js, "Cookie": other_cookie, "X-CSRF-Token": token})
    assert status == 403
    # The page's form: no field, a wrong field.
    status, _, body = http(broker, "POST", f"/topics/{topic}/produce", b"key=a&value=b",
                           {**form, "Cookie": cookie})
    assert status == 403 and b"no CSRF token" in body, body
    status, _, body = http(broker, "POST", f"/topics/{topic}/produce",
                           b"key=a&value=b&csrf=" + b"ab" * 32, {**form, "Cookie": cookie})
    assert status == 403 and b"does not match" in body, body
    # Resets and config edits are guarded the same way.
    status, _, _ = http(broker, "POST", "/api/groups/g/reset", b'{"to":"earliest"}', js)
    assert status == 403
    status, _, _ = http(broker, "POST", f"/topics/{topic}/configs",
                        b"name=retention.ms&value=1", {**form, "Cookie": cookie})
    assert status == 403
    assert log_end(broker, topic) == {0: 0}, "a refused POST wrote nothing"

    # The right pair passes, in the header and in the form.
    status, _, body = http(broker, "POST", f"/api/topics/{topic}/produce", record,
                           {**js, "Cookie": cookie, "X-CSRF-Token": token})
    assert status == 200 and json.loads(body)["offset"] == 0, body
    status, _, body = http(broker, "POST", f"/topics/{topic}/produce",
                           f"key=a&value=b&csrf={token}".encode(), {**form, "Cookie": cookie})
    assert status == 200 and b"at offset 1" in body, body
    assert log_end(broker, topic) == {0: 2}


def test_produce_from_the_page_then_find_it_in_the_browser(broker):
    driver = browser_or_skip()
    from confluent_kafka import TopicPartition as TP
    from selenium.webdriver.common.by import By
    try:
        topic = unique_topic("page-produce")
        create_topic(broker.bootstrap, topic, partitions=3)
        driver.get(f"http://{broker.http_address}/topics/{topic}")
        driver.find_element(By.ID, "produce-key").send_keys("order-42")
        driver.find_element(By.ID, "produce-value").send_keys('{"total": 42}')
        driver.find_element(By.ID, "produce-headers").send_keys("src: console\ntrace: t-1")
        shot(driver, "produce-form")
        navigate(driver, driver.find_element(By.ID, "produce"))
        said = driver.find_element(By.ID, "produced").text
        assert "key hash" in said, said
        part = int(said.split(" partition ")[1].split()[0])
        offset = int(said.split(" at offset ")[1].split()[0])
        shot(driver, "produced")

        # A Kafka client reads it where the page said.
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g"),
                      "enable.auto.commit": False})
        c.assign([TP(topic, part, offset)])
        m = None
        deadline = time.monotonic() + 20
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                m = None
        c.close()
        assert m is not None, "no record where the page said"
        assert (m.partition(), m.offset(), m.key(), m.value()) == (
            part, offset, b"order-42", b'{"total": 42}')
        assert m.headers() == [("src", b"console"), ("trace", b"t-1")]

        # And the message browser finds it from the page's link.
        navigate(driver, driver.find_element(By.ID, "see-record"))
        found = rows(driver, "messages")
        assert found and found[0][:2] == [str(part), str(offset)], found
        assert found[0][3] == "order-42" and '"total": 42' in found[0][5], found
        assert "src=console" in found[0][4], found
        shot(driver, "produced-in-browser")
    finally:
        driver.quit()


def test_config_edit_on_the_page_is_seen_by_a_kafka_admin_client(broker):
    driver = browser_or_skip()
    from confluent_kafka.admin import ConfigResource, ResourceType
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from conftest import admin_client

    admin = admin_client(broker.bootstrap)

    def described(topic):
        res = ConfigResource(ResourceType.TOPIC, topic)
        # The admin client must outlive the future (a dropped handle fails it).
        return admin.describe_configs([res])[res].result(15)["retention.ms"]

    try:
        topic = unique_topic("page-config")
        create_topic(broker.bootstrap, topic)

        def edit(key, op, value, validate=False):
            driver.get(f"http://{broker.http_address}/topics/{topic}")
            Select(driver.find_element(By.ID, "config-name")).select_by_value(key)
            Select(driver.find_element(By.ID, "config-op")).select_by_value(op)
            driver.find_element(By.ID, "config-value").send_keys(value)
            if validate:
                driver.find_element(By.ID, "config-validate").click()
            navigate(driver, driver.find_element(By.ID, "alter-config"))

        edit("retention.ms", "set", "7200000")
        assert "Altered" in driver.find_element(By.ID, "altered").text
        e = described(topic)
        # Source 1 is DYNAMIC_TOPIC_CONFIG.
        assert e.value == "7200000" and source_code(e) == 1, (e.value, e.source)

        # Refused as IncrementalAlterConfigs refuses it, and shown; nothing changes.
        edit("retention.ms", "set", "soon")
        err = driver.find_element(By.ID, "action-error").text
        assert "INVALID_CONFIG" in err and "retention.ms" in err, err
        shot(driver, "config-refused")
        edit("retention.ms", "append", "1")
        assert "not a list" in driver.find_element(By.ID, "action-error").text
        edit("retention.ms", "set", "60000", validate=True)
        assert "validate only" in driver.find_element(By.ID, "altered").text
        assert described(topic).value == "7200000"

        # The page shows the override; delete puts the default back.
        driver.get(f"http://{broker.http_address}/topics/{topic}")
        cfg = {r[0]: r for r in rows(driver, "configs")}
        assert cfg["retention.ms"][1:] == ["7200000", "DYNAMIC_TOPIC_CONFIG"], cfg["retention.ms"]
        edit("retention.ms", "delete", "")
        e = described(topic)
        assert e.value == "604800000" and source_code(e) != 1, (e.value, e.source)
    finally:
        driver.quit()


def source_code(entry) -> int:
    return int(getattr(entry.source, "value", entry.source))


def test_reset_offsets_dry_run_then_apply_checked_with_a_kafka_client(broker):
    driver = browser_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    try:
        topic = unique_topic("reset")
        group = unique_topic("resetters")
        create_topic(broker.bootstrap, topic, partitions=2)
        p = make_producer(broker.bootstrap)
        produce_all(p, ({"topic": topic, "partition": i % 2, "value": f"v{i}".encode()}
                        for i in range(40)))
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < 40 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        assert got == 40
        c.commit(asynchronous=False)

        def committed():
            probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
            try:
                return {tp.partition: tp.offset for tp in probe.committed(
                    [TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=15)}
            finally:
                probe.close()
        assert committed() == {0: 20, 1: 20}

        group_page = f"http://{broker.http_address}/groups/{urllib.parse.quote(group, safe='')}"

        def dry_run(to, value=""):
            driver.get(group_page)
            Select(driver.find_element(By.ID, "reset-to")).select_by_value(to)
            driver.find_element(By.ID, "reset-value").send_keys(value)
            navigate(driver, driver.find_element(By.ID, "dry-run"))

        # Refused while the member is in the group, with the reason.
        dry_run("shift-by", "-5")
        err = driver.find_element(By.ID, "action-error").text
        assert "active members (1)" in err and "stop its consumers" in err, err
        shot(driver, "reset-refused")
        c.close()

        def empty():
            _, g, _ = api(broker, f"/api/groups/{urllib.parse.quote(group, safe='')}")
            return g["state"] == "Empty", g["state"]
        wait_for(empty, "the group empty after its member left")

        dry_run("shift-by", "-5")
        plan = {int(r[1]): r for r in rows(driver, "reset-plan")}
        # Topic, Partition, Log start, High watermark, Current, New, Lag before, Lag after
        assert plan[0][2:] == ["0", "20", "20", "15", "0", "5"], plan
        assert plan[1][2:] == ["0", "20", "20", "15", "0", "5"], plan
        assert "lag 0 → 10" in driver.find_element(By.ID, "reset-summary").text
        shot(driver, "reset-dry-run")
        assert committed() == {0: 20, 1: 20}, "a dry run commits nothing"

        navigate(driver, driver.find_element(By.ID, "apply"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Offsets reset"
        assert committed() == {0: 15, 1: 15}

        # One partition to a timestamp before everything: its start.
        driver.get(group_page)
        Select(driver.find_element(By.ID, "reset-to")).select_by_value("timestamp")
        driver.find_element(By.ID, "reset-value").send_keys("0")
        Select(driver.find_element(By.ID, "reset-topic")).select_by_value(topic)
        driver.find_element(By.ID, "reset-partition").send_keys("1")
        navigate(driver, driver.find_element(By.ID, "dry-run"))
        assert [r[1] for r in rows(driver, "reset-plan")] == ["1"]
        navigate(driver, driver.find_element(By.ID, "apply"))
        assert committed() == {0: 15, 1: 0}

        # A consumer of the group now starts where the reset put it.
        c2 = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                       "enable.auto.commit": False})
        c2.subscribe([topic])
        first: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while len(first) < 2 and time.monotonic() < deadline:
            m = c2.poll(0.5)
            if m is not None and not m.error():
                first.setdefault(m.partition(), m.offset())
        c2.close()
        assert first == {0: 15, 1: 0}, first
    finally:
        driver.quit()


def test_live_tail_shows_records_produced_after_it_opened_and_stops_with_the_page(broker):
    driver = browser_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        topic = unique_topic("tail")
        create_topic(broker.bootstrap, topic, partitions=2)
        p = make_producer(broker.bootstrap)
        produce_all(p, [{"topic": topic, "key": b"before", "value": b"old"}])
        driver.get(f"http://{broker.http_address}/topics/{topic}/messages")
        driver.find_element(By.ID, "tail-start").click()
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "tail-box").get_attribute("data-started") == "true")
        _, counts, _ = api_plain(broker, "/api/tails")
        assert counts["open"] == 1, counts
        produce_all(p, ({"topic": topic, "key": f"live-{i}".encode(),
                         "value": json.dumps({"i": i}).encode()} for i in range(25)))
        WebDriverWait(driver, 20).until(lambda d: len(rows(d, "tail")) >= 25)
        keys = sorted(r[3] for r in rows(driver, "tail"))
        assert keys == sorted(f"live-{i}" for i in range(25)), keys
        shot(driver, "live-tail")

        # Leaving the page closes the stream and the broker's task for it.
        driver.get("about:blank")

        def closed():
            _, c, _ = api_plain(broker, "/api/tails")
            return c["open"] == 0, c
        wait_for(closed, "the tail closed after the page was left", timeout=40)
    finally:
        driver.quit()


def api_plain(broker, path: str):
    status, _, body = http(broker, "GET", path)
    return status, json.loads(body), None


def sse_events(sock_file):
    """Yields (event, data) from a Server-Sent Events stream."""
    event, data = None, []
    for raw in sock_file:
        line = raw.decode().rstrip("\n").rstrip("\r")
        if line == "":
            if event is not None or data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def test_a_slow_tail_viewer_is_told_which_offsets_it_skipped(broker):
    """The viewer stops reading (a tiny receive buffer) while 40,000 records arrive: the
    broker keeps at most one event for it, then skips it forward and says so; what it
    received plus what it was told it skipped is every offset, once."""
    import socket
    topic = unique_topic("slow-tail")
    create_topic(broker.bootstrap, topic)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = broker.http_address.rsplit(":", 1)
    s.connect((host, int(port)))
    s.sendall(f"GET /topics/{topic}/tail HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    f = s.makefile("rb")
    assert f.readline().startswith(b"HTTP/1.1 200")
    while f.readline() not in (b"\r\n", b""):
        pass
    events = sse_events(_dechunk(f))
    kind, data = next(events)
    assert kind == "start" and json.loads(data) == [[0, 0]], (kind, data)

    n = 40_000
    p = make_producer(broker.bootstrap, **{"linger.ms": 20})
    produce_all(p, ({"topic": topic, "value": b"x" * 200} for _ in range(n)))

    seen: list[int] = []
    skipped: list[tuple[int, int]] = []
    for kind, data in events:
        if kind == "records":
            seen += [m["offset"] for m in json.loads(data)]
        elif kind == "skipped":
            skipped += [(x["from"], x["to"]) for x in json.loads(data)]
        if len(seen) + sum(b - a for a, b in skipped) >= n:
            break
    s.close()
    covered = sorted(seen + [o for a, b in skipped for o in range(a, b)])
    assert covered == list(range(n)), (len(seen), skipped)
    assert skipped, "the viewer fell behind but was never told it skipped records"
    print(f"slow viewer: received {len(seen)} records, told of {len(skipped)} skips "
          f"({sum(b - a for a, b in skipped)} offsets)")


def _dechunk(f):
    """Lines of an HTTP/1.1 chunked body."""
    buf = b""
    while True:
        size_line = f.readline()
        if not size_line:
            return
        size = int(size_line.strip().split(b";")[0], 16)
        if size == 0:
            return
        buf += f.read(size)
        f.readline()
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line + b"\n"


def test_the_pipelines_page_shows_sources_views_and_their_progress(broker):
    driver = browser_or_skip()
    import psycopg
    from selenium.webdriver.common.by import By
    try:
        src = unique_topic("pl-orders")
        create_topic(broker.bootstrap, src, partitions=2)
        p = make_producer(broker.bootstrap)
        produce_all(p, ({"topic": src, "partition": i % 2,
                         "value": json.dumps({"id": i, "amount": i}).encode()}
                        for i in range(50)))
        produce_all(p, [{"topic": src, "partition": 0, "value": b"not json"}])
        with psycopg.connect(host="127.0.0.1", port=broker.sql_port, user="t", dbname="weir",
                             autocommit=True, connect_timeout=15) as conn:
            cur = conn.cursor()
            cur.execute(f"CREATE SOURCE plorders (id BIGINT, amount BIGINT) "
                        f"WITH (topic = '{src}', format = 'json')")
            cur.execute("CREATE MATERIALIZED VIEW plbig AS SELECT id, amount FROM plorders "
                        "WHERE amount >= 10")

        def progressed():
            _, pl, _ = api(broker, "/api/pipelines")
            view = [x for x in pl["pipelines"] if x["name"] == "plbig"]
            return bool(view) and view[0]["records_out"] == 40, pl
        pl = wait_for(progressed, "the view's committed progress", timeout=60)
        assert pl["sql"] == "running"
        srcs = [x for x in pl["sources"] if x["name"] == "plorders"]
        assert srcs and srcs[0]["topic"] == src and srcs[0]["format"] == "json", pl["sources"]
        view = [x for x in pl["pipelines"] if x["name"] == "plbig"][0]
        assert view["kind"] == "view" and view["status"] == "running", view
        assert view["dead_letters"] == 1, view
        assert view["offsets"] == {f"{src}/0": 26, f"{src}/1": 25}, view["offsets"]
        # The same progress on /metrics, in a valid exposition.
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(f"http://{broker.http_address}/metrics", timeout=15) as r:
            text = r.read().decode()
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {"weir_sql_pipeline_up", "weir_sql_pipeline_records_out"} <= families, families
        assert 'weir_sql_pipeline_up{pipeline="plbig",kind="view"} 1\n' in text, text
        assert 'weir_sql_pipeline_records_out_total{pipeline="plbig",kind="view"} 40\n' in text
        assert 'weir_sql_pipeline_dead_letters_total{pipeline="plbig",kind="view"} 1\n' in text

        driver.get(f"http://{broker.http_address}/pipelines")
        table = {r[0]: r for r in rows(driver, "pipelines")}
        assert table["plbig"][1:4] == ["view", "plbig", "running"], table
        assert table["plbig"][5] == "40" and table["plbig"][7] == "1", table["plbig"]
        assert "plorders" in {r[0] for r in rows(driver, "sources")}
        shot(driver, "pipelines")
    finally:
        driver.quit()
