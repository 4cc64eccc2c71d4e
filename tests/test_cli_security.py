"""Weir's own client and CLI on secured listeners, the console's HTTP Basic auth for tools,
the security counters on /metrics and `max.connections.per.ip` (issue 14).

The `weir` CLI runs against SASL_SSL, SASL_PLAINTEXT and SSL listeners with its flags, its
environment variables and a Kafka client properties file; what it writes is read back with
confluent-kafka over the same listener, so both clients agree on the data. Certificates come
from trustme (test_security.py's helper).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse
import uuid

import pytest
from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families

import kwire
from conftest import WEIR_BIN, free_port
from test_security import USERS, auth_failed, connect_errors, create_user_offline, make_certs

pytestmark = pytest.mark.timeout(240)

DELAY_MS = 200


def weir(*args, env=None, input=None, check=True, timeout=60):
    full_env = {**os.environ, **(env or {})}
    # The caller's environment must not log the CLI in by accident.
    for k in list(full_env):
        if k.startswith(("WEIR_SASL_", "WEIR_TLS", "WEIR_CLIENT_CONFIG")) and k not in (env or {}):
            del full_env[k]
    p = subprocess.run([WEIR_BIN, *args], capture_output=True, text=True, timeout=timeout,
                       env=full_env, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"weir {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


class Secured:
    def __init__(self, broker, tmp, ports):
        self.broker = broker
        self.tmp = tmp
        self.ports = ports
        self.ca_file = str(tmp / "ca.pem")

    def addr(self, name):
        return f"127.0.0.1:{self.ports[name]}"

    def confluent(self, name, mechanism="SCRAM-SHA-512", user="alice"):
        conf = {"bootstrap.servers": self.addr(name), "security.protocol": name}
        if "SSL" in name:
            conf["ssl.ca.location"] = self.ca_file
        if "SASL" in name:
            conf.update({"sasl.mechanism": mechanism, "sasl.username": user,
                         "sasl.password": USERS[user]})
        return conf

    def http(self, method, path, headers=None, body=None):
        c = http.client.HTTPConnection(self.broker.host, self.broker.http_port, timeout=20)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def metrics(self) -> dict:
        status, text = self.http("GET", "/metrics")
        assert status == 200
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def secured(broker_factory, tmp_path):
    make_certs(tmp_path)
    ports = {"PLAINTEXT": free_port(), "SSL": free_port(), "SASL_PLAINTEXT": free_port(),
             "SASL_SSL": free_port()}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for user, password in USERS.items():
        create_user_offline(data_dir, user, password)
    b = broker_factory(data_dir=data_dir, port=ports["PLAINTEXT"], settings={
        "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "ssl.keystore.location": str(tmp_path / "server.pem"),
        "connection.failed.authentication.delay.ms": str(DELAY_MS),
        # alice administers; bob may do only what an ACL grants him (nothing here).
        "super.users": "User:alice",
        "allow.everyone.if.no.acl.found": "false",
    })
    return Secured(b, tmp_path, ports)


def sasl_ssl_flags(s: Secured, user="alice", mechanism="SCRAM-SHA-512"):
    return ["-b", s.addr("SASL_SSL"), "--sasl-user", user, "--sasl-password", USERS[user],
            "--sasl-mechanism", mechanism, "--tls-ca", s.ca_file]


def read_back(conf, topic, n, timeout=30):
    c = Consumer({**conf, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value().decode())
        return got
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# The CLI on secured listeners.

def test_every_client_command_over_sasl_ssl(secured):
    s = secured
    f = sasl_ssl_flags(s)
    topic = f"cli-sasl-ssl-{uuid.uuid4().hex[:6]}"
    weir("topic", "create", topic, "-p", "2", *f)
    assert topic in weir("topic", "list", *f).stdout
    assert topic in weir("topic", "describe", topic, *f).stdout
    weir("produce", topic, "-p", "0", *f, input="".join(f"v{i}\n" for i in range(5)))
    out = weir("consume", topic, "-p", "0", "-n", "5", *f).stdout.split()
    assert out == [f"v{i}" for i in range(5)]
    # confluent-kafka over the same listener reads what the CLI wrote.
    assert read_back(s.confluent("SASL_SSL"), topic, 5) == [f"v{i}" for i in range(5)]
    # Admin commands: users, ACLs, groups, cluster.
    weir("user", "create", "carol", "--password", "carol-pw", "--mechanism", "SCRAM-SHA-256", *f)
    assert "carol" in weir("user", "list", *f).stdout
    weir("acl", "create", "--allow-principal", "User:bob", "--operation", "read",
         "--topic", topic, *f)
    acls = weir("acl", "list", "--topic", topic, *f).stdout
    assert "User:bob" in acls and "READ" in acls, acls
    weir("group", "list", *f)
    info = weir("cluster", "info", *f).stdout
    assert "CLUSTER ID" in info
    # Every address the CLI was handed is the SASL_SSL listener's: it never fell back.
    assert str(s.ports["SASL_SSL"]) in info and str(s.ports["PLAINTEXT"]) not in info, info
    # The user the CLI made over SASL_SSL logs in with the CLI itself.
    carol = ["-b", s.addr("SASL_PLAINTEXT"), "--sasl-user", "carol", "--sasl-password",
             "carol-pw", "--sasl-mechanism", "SCRAM-SHA-256"]
    denied = weir("topic", "describe", topic, *carol, check=False)
    assert denied.returncode != 0 and "TOPIC_AUTHORIZATION_FAILED" in denied.stderr, denied.stderr
    weir("user", "delete", "carol", *f)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_every_mechanism_from_environment_variables(secured, mechanism):
    s = secured
    env = {"WEIR_BROKERS": s.addr("SASL_PLAINTEXT"), "WEIR_SASL_USER": "alice",
           "WEIR_SASL_PASSWORD": USERS["alice"], "WEIR_SASL_MECHANISM": mechanism}
    topic = f"cli-env-{uuid.uuid4().hex[:6]}"
    weir("topic", "create", topic, env=env)
    weir("produce", topic, env=env, input="a\nb\n")
    assert weir("consume", topic, "-n", "2", env=env).stdout.split() == ["a", "b"]


def test_client_config_file_and_plain_tls(secured):
    s = secured
    props = s.tmp / "client.properties"
    props.write_text("# as the Kafka tools' --command-config\n"
                     "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\n"
                     f"sasl.username=alice\nsasl.password={USERS['alice']}\n"
                     f"ssl.ca.location={s.ca_file}\n")
    topic = f"cli-props-{uuid.uuid4().hex[:6]}"
    weir("topic", "create", topic, "-b", s.addr("SASL_SSL"), "--client-config", str(props))
    # SSL without SASL: the principal is ANONYMOUS, which no ACL allows, so the broker
    # answers (TLS worked) and refuses the topic.
    r = weir("topic", "describe", topic, "-b", s.addr("SSL"), "--tls-ca", s.ca_file, check=False)
    assert r.returncode != 0 and "TOPIC_AUTHORIZATION_FAILED" in r.stderr, r.stderr


def test_bad_credentials_and_untrusted_certificates_are_clear_errors(secured):
    s = secured
    before = s.metrics()
    wrong = ["-b", s.addr("SASL_SSL"), "--sasl-user", "alice", "--sasl-password", "nope",
             "--tls-ca", s.ca_file]
    r = weir("topic", "list", *wrong, check=False)
    assert r.returncode != 0
    assert "SCRAM-SHA-512 authentication failed" in r.stderr, r.stderr
    assert "SASL_AUTHENTICATION_FAILED" in r.stderr, r.stderr
    assert "nope" not in r.stderr
    # A mechanism the broker does not enable on this listener names the enabled ones.
    r = weir("topic", "list", "-b", s.addr("SASL_PLAINTEXT"), "--sasl-user", "alice",
             "--sasl-password", "x", "--sasl-mechanism", "GSSAPI", check=False)
    assert r.returncode != 0 and "is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" in r.stderr
    # A CA that did not sign the broker's certificate: the TLS handshake fails.
    other = make_other_ca(s.tmp)
    r = weir("topic", "list", "-b", s.addr("SSL"), "--tls-ca", other, check=False)
    assert r.returncode != 0 and "certificate" in r.stderr.lower(), r.stderr
    # The name to verify: the certificate is for localhost and 127.0.0.1, not for "weir.test".
    r = weir("topic", "list", "-b", s.addr("SSL"), "--tls-ca", s.ca_file,
             "--tls-server-name", "weir.test", check=False)
    assert r.returncode != 0 and "certificate" in r.stderr.lower(), r.stderr
    # PLAINTEXT client on the TLS port, SASL client on the PLAINTEXT port: errors, no hang.
    r = weir("topic", "list", "-b", s.addr("SSL"), check=False, timeout=90)
    assert r.returncode != 0
    r = weir("topic", "list", "-b", s.addr("PLAINTEXT"), "--sasl-user", "alice",
             "--sasl-password", USERS["alice"], check=False)
    assert r.returncode != 0 and "authentication failed" in r.stderr, r.stderr
    # The failures are on /metrics by listener and mechanism.
    after = s.metrics()
    name = "weir_sasl_authentication_failures_total"
    assert metric(after, name, listener="SASL_SSL", mechanism="SCRAM-SHA-512") \
        == metric(before, name, listener="SASL_SSL", mechanism="SCRAM-SHA-512") + 1
    tls = "weir_tls_handshake_failures_total"
    assert metric(after, tls, listener="SSL") >= metric(before, tls, listener="SSL") + 2


def make_other_ca(tmp):
    import trustme
    path = tmp / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def test_failures_and_denials_are_counted_by_kind(secured):
    s = secured
    before = s.metrics()
    errors = connect_errors({**s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256"),
                             "sasl.password": "wrong"})
    assert auth_failed(errors), errors
    # bob has no ACL: describing a topic is denied (by API and resource type).
    topic = f"denied-{uuid.uuid4().hex[:6]}"
    weir("topic", "create", topic, *sasl_ssl_flags(s))
    bob = ["-b", s.addr("SASL_PLAINTEXT"), "--sasl-user", "bob", "--sasl-password", USERS["bob"]]
    r = weir("topic", "describe", topic, *bob, check=False)
    assert r.returncode != 0
    r = weir("group", "describe", "some-group", *bob, check=False)
    assert r.returncode != 0
    after = s.metrics()
    name = "weir_sasl_authentication_failures_total"
    assert metric(after, name, listener="SASL_PLAINTEXT", mechanism="SCRAM-SHA-256") \
        >= metric(before, name, listener="SASL_PLAINTEXT", mechanism="SCRAM-SHA-256") + 1
    denied = "weir_authorization_denied_total"
    assert metric(after, denied, api="Metadata", resource_type="TOPIC") \
        >= metric(before, denied, api="Metadata", resource_type="TOPIC") + 1
    groups = sum(v for (n, labels), v in after.items()
                 if n == denied and ("resource_type", "GROUP") in labels)
    assert groups >= 1, {k: v for k, v in after.items() if k[0] == denied}


# ---------------------------------------------------------------------------------------------
# The console's HTTP Basic auth, and the debug bundle on a SASL broker.

def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_on_the_api(secured):
    s = secured
    status, body = s.http("GET", "/api/topics")
    assert status == 401, body
    status, body = s.http("GET", "/api/topics", basic("alice", USERS["alice"]))
    assert status == 200, body
    assert isinstance(json.loads(body), (list, dict))
    # bob is read-only (no ALTER on the cluster): reads are allowed, the bundle is not.
    assert s.http("GET", "/api/topics", basic("bob", USERS["bob"]))[0] == 200
    assert s.http("GET", "/api/debug/bundle?gap_ms=0", basic("bob", USERS["bob"]))[0] == 403
    # A POST with Basic needs no CSRF token (no cookie is involved): it reaches the handler,
    # which answers about the topic, not about CSRF.
    status, body = s.http("POST", "/api/topics/no-such-topic/produce",
                          {**basic("alice", USERS["alice"]), "Content-Type": "application/json"},
                          json.dumps({"value": "x"}))
    assert status != 403 or "CSRF" not in body, body
    assert "CSRF" not in body, body
    # The same POST with a session cookie but no token is refused by the CSRF guard.
    status, body = s.http("POST", "/api/topics/no-such-topic/produce",
                          {"Content-Type": "application/json", "Cookie": "weir_session=x"},
                          json.dumps({"value": "x"}))
    assert status in (401, 403), body
    # Basic never reaches a page (only /api), and is never challenged for.
    status, _ = s.http("GET", "/topics", basic("alice", USERS["alice"]))
    assert status == 303
    before = s.metrics()
    started = time.monotonic()
    status, body = s.http("GET", "/api/topics", basic("alice", "wrong"))
    took = time.monotonic() - started
    assert status == 401 and "Basic auth failed" in body, body
    assert took >= DELAY_MS / 1000 * 0.9, took
    for bad in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        status, body = s.http("GET", "/api/topics", {"Authorization": bad})
        assert status == 401, body
    after = s.metrics()
    name = "weir_console_login_failures_total"
    assert metric(after, name, method="basic") == metric(before, name, method="basic") + 3


def test_form_login_failures_are_counted(secured):
    s = secured
    c = http.client.HTTPConnection(s.broker.host, s.broker.http_port, timeout=15)
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    binding = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    c.close()
    import re
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    before = s.metrics()
    body = urllib.parse.urlencode({"user": "alice", "password": "wrong", "next": "/",
                                   "csrf": token})
    status, _ = s.http("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded",
                                          "Cookie": f"weir_csrf={binding}"}, body)
    assert status == 401
    after = s.metrics()
    name = "weir_console_login_failures_total"
    assert metric(after, name, method="form") == metric(before, name, method="form") + 1


def test_debug_bundle_cli_logs_in_with_basic_auth(secured):
    s = secured
    out = s.tmp / "bundle.tar.gz"
    common = ["debug", "bundle", "--http", s.broker.http_address, "--out", str(out),
              "--data-dir", str(s.broker.data_dir), "--gap-ms", "0"]
    r = weir(*common, check=False)
    assert r.returncode != 0 and "401" in r.stderr and "--sasl-user" in r.stderr, r.stderr
    assert not out.exists(), "a refused bundle must not fall back to the offline one"
    r = weir(*common, "--sasl-user", "bob", "--sasl-password", USERS["bob"], check=False)
    assert r.returncode != 0 and "403" in r.stderr, r.stderr
    weir(*common, env={"WEIR_SASL_USER": "alice", "WEIR_SASL_PASSWORD": USERS["alice"]})
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(out.read_bytes()), mode="r:gz") as tar:
        names = {m.name for m in tar.getmembers()}
        manifest = json.loads(tar.extractfile("weir-debug/manifest.json").read())
        for m in tar.getmembers():
            if m.isfile():
                assert USERS["alice"].encode() not in tar.extractfile(m).read(), m.name
    assert "weir-debug/config.json" in names and manifest["mode"] == "online"


# ---------------------------------------------------------------------------------------------
# max.connections.per.ip and its overrides.

def api_versions_ok(sock) -> bool:
    """Sends ApiVersions v0 and reads the answer; False when the broker closed the socket."""
    try:
        sock.sendall(kwire.frame(kwire.request_header_v1(18, 0, 1)))
        head = sock.recv(4)
        return len(head) == 4
    except OSError:
        return False


def open_from(source_ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def admitted_from(source_ip, port, timeout=10):
    """A connection the broker serves; retried while the harness's readiness probes (from
    127.0.0.1 too) still hold slots the broker has not seen closed yet."""
    deadline = time.monotonic() + timeout
    while True:
        s = open_from(source_ip, port)
        if api_versions_ok(s):
            return s
        s.close()
        assert time.monotonic() < deadline, f"no connection from {source_ip} was admitted"
        time.sleep(0.1)


def test_max_connections_per_ip_closes_the_excess_at_accept(broker_factory):
    b = broker_factory(settings={"max.connections.per.ip": "3",
                                 "max.connections.per.ip.overrides": "127.0.0.2:1,127.0.0.3:0"})
    port = b.port
    kept = [admitted_from("127.0.0.1", port) for _ in range(3)]
    extra = open_from("127.0.0.1", port)
    assert not api_versions_ok(extra), "the 4th connection from 127.0.0.1 must be closed"
    extra.close()
    # Another address has its own count (an override of 1), and 0 refuses an address.
    other = open_from("127.0.0.2", port)
    assert api_versions_ok(other)
    second = open_from("127.0.0.2", port)
    assert not api_versions_ok(second)
    second.close()
    refused = open_from("127.0.0.3", port)
    assert not api_versions_ok(refused)
    refused.close()
    # A slot comes free when a connection closes.
    kept.pop().close()
    again = admitted_from("127.0.0.1", port)
    status_body = http_get(b.http_address, "/metrics")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(status_body) for s in fam.samples}
    rejected = samples.get(("weir_connections_rejected_total", (("reason", "per_ip"),)), 0)
    assert rejected >= 3, rejected
    for s in [*kept, other, again]:
        s.close()


def test_max_connections_per_ip_is_dynamic(broker_factory):
    b = broker_factory()
    kept = [admitted_from("127.0.0.1", b.port) for _ in range(2)]
    # Altered on this broker (IncrementalAlterConfigs), no restart.
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigEntry, AlterConfigOpType
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource("BROKER", "0", incremental_configs=[
        ConfigEntry("max.connections.per.ip.overrides", "127.0.0.4:1",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(15)
    first = open_from("127.0.0.4", b.port)
    assert api_versions_ok(first)
    second = open_from("127.0.0.4", b.port)
    assert not api_versions_ok(second)
    # An invalid override is refused with the reason, and the old one stays.
    bad = ConfigResource("BROKER", "0", incremental_configs=[
        ConfigEntry("max.connections.per.ip.overrides", "db-host:3",
                    incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(Exception, match="IP address"):
        for f in admin.incremental_alter_configs([bad]).values():
            f.result(15)
    for s in [*kept, first, second]:
        s.close()


def http_get(addr, path):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        c.request("GET", path)
        return c.getresponse().read().decode()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# The Java AdminClient's ACL API.

def test_java_admin_client_acls(broker_factory, tmp_path):
    import shutil
    from pathlib import Path
    libs = Path(os.environ.get("WEIR_JAVA_LIBS", Path.home() / ".cache" / "weir-java"))
    if shutil.which("javac") is None or not (libs / "kafka-clients-4.3.0.jar").exists():
        pytest.skip("javac or the Java client jars are missing (scripts/test installs the jars)")
    data_dir = tmp_path / "java-acl-data"
    data_dir.mkdir()
    for user, password in USERS.items():
        create_user_offline(data_dir, user, password)
    port, sasl = free_port(), free_port()
    b = broker_factory(data_dir=data_dir, port=port, settings={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "super.users": "User:alice",
        "allow.everyone.if.no.acl.found": "false",
    })
    classes = tmp_path / "classes"
    src = os.path.join(os.path.dirname(__file__), "java", "WeirAcls.java")
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{libs}/*", src], check=True,
                   capture_output=True, timeout=120)
    topic = "java-acl-" + uuid.uuid4().hex[:6]
    p = subprocess.run(["java", "-cp", f"{classes}:{libs}/*", "WeirAcls", f"127.0.0.1:{sasl}",
                        topic, "alice", USERS["alice"], "bob", USERS["bob"]],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    assert p.stdout.strip().endswith("OK")
    # What the Java client wrote as bob is there.
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{sasl}", "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice",
                  "sasl.password": USERS["alice"], "group.id": "check-" + uuid.uuid4().hex[:6],
                  "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        got = None
        while got is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got = m.value()
        assert got == b"v"
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# The authorized-operations fields, when a client asks for them.

def test_authorized_operations_when_requested(secured):
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                       NewTopic, ResourcePatternType, ResourceType)
    s = secured
    topic = f"authz-ops-{uuid.uuid4().hex[:6]}"
    group = f"authz-group-{uuid.uuid4().hex[:6]}"
    alice = AdminClient(s.confluent("SASL_PLAINTEXT"))
    alice.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    alice.create_acls([
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:bob", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, "User:bob", "*",
                   AclOperation.DESCRIBE, AclPermissionType.ALLOW),
    ])
    time.sleep(0.5)
    # A group to describe: bob commits an offset in it (READ on the group is not granted, so
    # alice does it).
    c = Consumer({**s.confluent("SASL_PLAINTEXT"), "group.id": group,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    c.poll(3)
    c.close()

    def ops(future):
        got = future.result(15).authorized_operations
        return {o.name for o in got} if got is not None else None

    bob = AdminClient(s.confluent("SASL_PLAINTEXT", user="bob"))
    as_bob = ops(bob.describe_topics(TopicCollection([topic]),
                                     include_authorized_operations=True)[topic])
    assert as_bob == {"READ", "DESCRIBE"}, as_bob
    as_alice = ops(alice.describe_topics(TopicCollection([topic]),
                                         include_authorized_operations=True)[topic])
    assert as_alice == {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
                        "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}, as_alice
    cluster = ops(alice.describe_cluster(include_authorized_operations=True))
    assert {"ALTER", "DESCRIBE", "CLUSTER_ACTION", "IDEMPOTENT_WRITE"} <= cluster, cluster
    bob_cluster = ops(bob.describe_cluster(include_authorized_operations=True))
    assert not bob_cluster, bob_cluster
    g = bob.describe_consumer_groups([group], include_authorized_operations=True)[group]
    assert ops(g) == {"DESCRIBE"}, ops(g)
    # Not asked for: not given.
    plain = bob.describe_topics(TopicCollection([topic]))[topic].result(15)
    assert not plain.authorized_operations, plain.authorized_operations
