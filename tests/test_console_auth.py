"""The console's login (issue 14): with a SASL listener, every page and /api route needs a
session made by logging in with a SCRAM user's password; a read-only user sees only the topics
and groups it may DESCRIBE and is refused actions; /metrics, /livez and /readyz take a bearer
token instead. Driven with headless Chromium (Selenium) and raw HTTP (http.client, which does
not follow redirects, so each answer is seen as the broker gave it); the topics, groups and ACLs
are made with confluent-kafka over SASL."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from conftest import free_port
from test_console import browser_or_skip, navigate, shot
from test_security import create_user_offline

pytestmark = pytest.mark.timeout(180)

USERS = {"admin": "admin-secret", "alice": "alice-secret"}
MECH = "SCRAM-SHA-256"
TOKEN = "probe-token-" + uuid.uuid4().hex
DELAY_MS = 600


class Console:
    def __init__(self, broker, sasl):
        self.broker = broker
        self.sasl = sasl
        self.base = f"http://{broker.http_address}"

    def conf(self, user):
        return {"bootstrap.servers": self.sasl, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": MECH, "sasl.username": user, "sasl.password": USERS[user]}

    def csrf(self):
        """(binding cookie, token) as a browser gets them from the login page, which every
        form POST (the login's too) must carry past the CSRF guard."""
        if getattr(self, "_csrf", None) is None:
            c = http.client.HTTPConnection(self.broker.host, self.broker.http_port, timeout=15)
            try:
                c.request("GET", "/login")
                r = c.getresponse()
                page = r.read().decode()
                binding = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
            finally:
                c.close()
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
            self._csrf = (binding, token)
        return self._csrf

    def http(self, method, path, body=None, cookie=None, headers=None, csrf=True):
        """(status, headers, body text) of one request, redirects not followed; a form POST
        carries the CSRF cookie and token unless `csrf` is false."""
        h = dict(headers or {})
        cookies = [f"weir_session={cookie}"] if cookie else []
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
            if csrf and method == "POST":
                binding, token = self.csrf()
                cookies.append(f"weir_csrf={binding}")
                body = {**body, "csrf": token}
            body = urllib.parse.urlencode(body)
        if cookies:
            h["Cookie"] = "; ".join(cookies)
        c = http.client.HTTPConnection(self.broker.host, self.broker.http_port, timeout=15)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.headers, r.read().decode(errors="replace")
        finally:
            c.close()

    def login(self, user, password=None, next_path="/"):
        """(status, Set-Cookie header, session id or None, seconds taken)."""
        started = time.monotonic()
        status, headers, _ = self.http("POST", "/login", {
            "user": user, "password": USERS.get(user, "") if password is None else password,
            "next": next_path})
        took = time.monotonic() - started
        set_cookie = headers.get("Set-Cookie")
        sid = None
        if set_cookie and set_cookie.startswith("weir_session="):
            sid = set_cookie.split(";")[0].split("=", 1)[1] or None
        return status, set_cookie, sid, took


@pytest.fixture
def console(broker_factory, tmp_path):
    port, sasl = free_port(), free_port()
    data_dir = tmp_path / "console-auth"
    data_dir.mkdir()
    for user, password in USERS.items():
        create_user_offline(data_dir, user, password)
    b = broker_factory(data_dir=data_dir, port=port, settings={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "super.users": "User:admin",
        "connection.failed.authentication.delay.ms": str(DELAY_MS),
        "weir.http.metrics.token": TOKEN,
    })
    c = Console(b, f"127.0.0.1:{sasl}")
    # Wait for the HTTP listener to have the broker's state (ready, not recovering).
    deadline = time.monotonic() + 30
    while c.http("GET", "/readyz", headers={"Authorization": f"Bearer {TOKEN}"})[0] != 200:
        assert time.monotonic() < deadline, "the HTTP listener never answered"
        time.sleep(0.1)
    return c


def setup_data(c: Console):
    """Topics and groups made as the super user: alice may DESCRIBE (and READ) one topic and
    one group; the others are hidden from her."""
    admin = AdminClient(c.conf("admin"))
    seen, hidden = f"shared-{uuid.uuid4().hex[:6]}", f"secret-{uuid.uuid4().hex[:6]}"
    for f in admin.create_topics([NewTopic(seen, 1, 1), NewTopic(hidden, 1, 1)],
                                 request_timeout=15).values():
        f.result(15)
    p = Producer({**c.conf("admin"), "acks": "all"})
    for t in (seen, hidden):
        p.produce(t, key=b"k", value=f"hello from {t}".encode())
    assert p.flush(15) == 0
    groups = {}
    for name, topic in (("alice-group", seen), ("secret-group", hidden)):
        g = f"{name}-{uuid.uuid4().hex[:6]}"
        cons = Consumer({**c.conf("admin"), "group.id": g, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
        cons.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                cons.commit(m, asynchronous=False)
                break
        cons.close()
        groups[name] = g
    acl = lambda rt, name, op: AclBinding(rt, name, ResourcePatternType.LITERAL, "User:alice",  # noqa: E731
                                          "*", op, AclPermissionType.ALLOW)
    results = admin.create_acls([acl(ResourceType.TOPIC, seen, AclOperation.READ),
                                 acl(ResourceType.GROUP, groups["alice-group"],
                                     AclOperation.DESCRIBE)])
    for f in results.values():
        f.result(15)
    return seen, hidden, groups


def test_pages_and_api_need_a_session_and_probes_need_the_token(console):
    # A page sends the browser to the login form and back; the API answers 401.
    status, headers, _ = console.http("GET", "/topics?q=x")
    assert status == 303
    assert headers["Location"] == "/login?next=" + urllib.parse.quote("/topics?q=x", safe="")
    status, _, body = console.http("GET", "/api/topics")
    assert status == 401 and "login required" in json.loads(body)["error"]
    assert console.http("GET", "/api/debug/bundle")[0] == 401
    assert console.http("POST", "/topics/x")[0] == 303
    # The stylesheet and the login form itself are open.
    assert console.http("GET", "/assets/console.css")[0] == 200
    status, _, body = console.http("GET", "/login")
    assert status == 200 and 'id="login"' in body

    for probe in ("/metrics", "/livez", "/readyz"):
        status, headers, _ = console.http("GET", probe)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer", probe
        assert console.http("GET", probe, headers={"Authorization": "Bearer wrong"})[0] == 401
        ok = console.http("GET", probe, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok[0] == 200, (probe, ok)
    # The token is a secret: the debug bundle never shows it (checked as the super user).
    status, _, sid, _ = console.login("admin")
    assert status == 303 and sid
    c = http.client.HTTPConnection(console.broker.host, console.broker.http_port, timeout=60)
    c.request("GET", "/api/debug/bundle?gap_ms=0", headers={"Cookie": f"weir_session={sid}"})
    r = c.getresponse()
    bundle = r.read()
    c.close()
    assert r.status == 200
    import gzip
    assert TOKEN.encode() not in gzip.decompress(bundle)


def test_failed_logins_are_delayed_and_sessions_are_cookies_with_the_flags(console):
    # Wrong password and unknown user: the same answer, after the SASL failure delay.
    wrong = "wrong-" + uuid.uuid4().hex
    for user, password in (("alice", wrong), ("nobody", wrong)):
        status, set_cookie, sid, took = console.login(user, password)
        print(f"\n[login] failed login for {user!r} answered in {took * 1000:.0f} ms "
              f"(connection.failed.authentication.delay.ms = {DELAY_MS})")
        assert status == 401 and set_cookie is None and sid is None
        assert took >= DELAY_MS / 1000 * 0.95, took
    log = console.broker.log_path.read_text(errors="replace")
    assert "console login failed" in log
    assert wrong not in log, "a password was logged"

    status, set_cookie, sid, took = console.login("alice", next_path="//evil.example/x")
    print(f"[login] successful login answered in {took * 1000:.0f} ms")
    assert status == 303
    # Never a redirect off the console.
    assert console.http("POST", "/login", {"user": "alice", "password": USERS["alice"],
                                           "next": "//evil.example/x"})[1]["Location"] == "/"
    flags = [f.strip() for f in set_cookie.split(";")]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags, flags
    assert "Max-Age=3600" in flags, flags
    assert "Secure" not in flags, "the listener speaks plain HTTP and weir.http.cookie.secure is off"
    assert len(sid) == 64 and int(sid, 16) >= 0
    # The session works; a made-up id does not.
    assert console.http("GET", "/api/overview", cookie=sid)[0] == 200
    assert console.http("GET", "/api/overview", cookie="0" * 64)[0] == 401
    # Two logins, two different random ids.
    assert console.login("alice")[2] != sid
    # Logout ends the session on the server, not only in the browser.
    status, headers, _ = console.http("POST", "/logout", cookie=sid)
    assert status == 303 and "Max-Age=0" in headers["Set-Cookie"]
    assert console.http("GET", "/api/overview", cookie=sid)[0] == 401


def test_read_only_user_sees_only_what_it_may_describe_and_cannot_act(console):
    seen, hidden, groups = setup_data(console)
    _, _, alice, _ = console.login("alice")
    _, _, admin, _ = console.login("admin")

    def api(path, sid):
        status, _, body = console.http("GET", path, cookie=sid)
        return status, json.loads(body)

    # Lists: alice's DESCRIBE decides.
    _, topics = api("/api/topics", alice)
    assert [t["name"] for t in topics["topics"]] == [seen]
    _, topics = api("/api/topics", admin)
    assert {seen, hidden} <= {t["name"] for t in topics["topics"]}
    _, gl = api("/api/groups", alice)
    assert [g["group_id"] for g in gl["groups"]] == [groups["alice-group"]]
    _, ov = api("/api/overview", alice)
    assert ov["topics"] == 1 and ov["groups"] == 1, ov
    # Details of what she may not see answer as if they did not exist.
    assert api(f"/api/topics/{hidden}", alice)[0] == 404
    assert api(f"/api/groups/{groups['secret-group']}", alice)[0] == 404
    assert api(f"/api/topics/{hidden}/messages", alice)[0] == 404
    assert api(f"/api/topics/{hidden}", admin)[0] == 200
    # Her own topic, its messages (READ), and the group page without the hidden topic.
    status, detail = api(f"/api/topics/{seen}", alice)
    assert status == 200 and detail["name"] == seen
    status, msgs = api(f"/api/topics/{seen}/messages", alice)
    assert status == 200 and msgs["messages"], msgs
    # Actions are the admin's: the debug bundle and any POST (what the console's actions use).
    assert console.http("GET", "/api/debug/bundle?gap_ms=0", cookie=alice)[0] == 403
    status, _, body = console.http("POST", f"/topics/{seen}", {"x": "1"}, cookie=alice)
    assert status == 403 and "read-only" in body
    # The admin passes the check (no such route: 405 from the router, not 403).
    assert console.http("POST", f"/topics/{seen}", {"x": "1"}, cookie=admin)[0] in (404, 405)
    # ... and then the CSRF guard: without the token even the admin's POST is refused.
    assert console.http("POST", f"/topics/{seen}", {"x": "1"}, cookie=admin, csrf=False)[0] == 403


def test_login_logout_in_the_browser(console):
    driver = browser_or_skip()
    from selenium.webdriver.common.by import By
    seen, hidden, groups = setup_data(console)
    try:
        driver.get(f"{console.base}/topics")
        assert driver.current_url.startswith(f"{console.base}/login?next=")
        driver.find_element(By.ID, "user").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys("not-her-password")
        navigate(driver, driver.find_element(By.ID, "submit"))
        assert "Invalid user name or password" in driver.find_element(By.ID, "login-error").text
        assert driver.get_cookie("weir_session") is None
        shot(driver, "console-login-failed")

        driver.find_element(By.ID, "user").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(USERS["alice"])
        navigate(driver, driver.find_element(By.ID, "submit"))
        # Back where she was going, logged in, read-only.
        assert driver.current_url == f"{console.base}/topics", driver.current_url
        cookie = driver.get_cookie("weir_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
        assert driver.find_element(By.ID, "session-user").text == "alice"
        assert driver.find_element(By.ID, "session-role").text == "read-only"
        page = driver.find_element(By.TAG_NAME, "main").text
        assert seen in page and hidden not in page
        shot(driver, "console-read-only-topics")
        driver.get(f"{console.base}/groups")
        page = driver.find_element(By.TAG_NAME, "main").text
        assert groups["alice-group"] in page and groups["secret-group"] not in page
        driver.get(f"{console.base}/topics/{hidden}")
        assert driver.find_elements(By.ID, "not-found")
        # The session cookie is not readable by the page's scripts (HttpOnly).
        assert "weir_session" not in driver.execute_script("return document.cookie")

        old = cookie["value"]
        driver.get(f"{console.base}/groups")
        navigate(driver, driver.find_element(By.ID, "logout"))
        assert driver.current_url.startswith(f"{console.base}/login")
        assert console.http("GET", "/api/topics", cookie=old)[0] == 401

        driver.find_element(By.ID, "user").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(USERS["admin"])
        navigate(driver, driver.find_element(By.ID, "submit"))
        assert driver.find_element(By.ID, "session-role").text == "admin"
        driver.get(f"{console.base}/topics")
        page = driver.find_element(By.TAG_NAME, "main").text
        assert seen in page and hidden in page
        shot(driver, "console-admin-topics")
    finally:
        driver.quit()
