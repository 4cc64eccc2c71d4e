"""Listeners, TLS and SASL (PLAIN, SCRAM-SHA-256/512) with real clients: confluent-kafka
(librdkafka), kafka-python and kcat, over certificates this test makes with trustme.

One broker per test with several listeners: PLAINTEXT (the harness's readiness port and the
admin path), SSL, SASL_PLAINTEXT and SASL_SSL, each on its own port.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest
import trustme
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import kwire
from conftest import WEIR_BIN, free_port

pytestmark = pytest.mark.timeout(180)

API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33

USERS = {"alice": "alice-secret", "bob": "bob-secret"}


class Secure:
    """A broker with every kind of listener and the files a client needs."""

    def __init__(self, broker, tmp, ca, ports):
        self.broker = broker
        self.tmp = tmp
        self.ca = ca
        self.ports = ports
        self.ca_file = str(tmp / "ca.pem")

    def addr(self, name):
        return f"127.0.0.1:{self.ports[name]}"

    def confluent(self, name, mechanism=None, user="alice", password=None, **extra):
        conf = {"bootstrap.servers": self.addr(name), "security.protocol": name}
        if name in ("SSL", "SASL_SSL"):
            conf["ssl.ca.location"] = self.ca_file
        if mechanism:
            conf.update({"sasl.mechanism": mechanism, "sasl.username": user,
                         "sasl.password": password if password is not None else USERS.get(user, "x")})
        conf.update(extra)
        return conf

    def kafka_python(self, name, mechanism=None, user="alice", password=None):
        conf = {"bootstrap_servers": self.addr(name), "security_protocol": name}
        if name in ("SSL", "SASL_SSL"):
            conf["ssl_cafile"] = self.ca_file
            conf["ssl_check_hostname"] = True
        if mechanism:
            conf.update({"sasl_mechanism": mechanism, "sasl_plain_username": user,
                         "sasl_plain_password": password if password is not None else USERS[user]})
        return conf


def make_certs(tmp, expired=False):
    import datetime
    ca = trustme.CA()
    validity = {}
    if expired:
        now = datetime.datetime.now(datetime.timezone.utc)
        validity = {"not_before": now - datetime.timedelta(days=10),
                    "not_after": now - datetime.timedelta(days=1)}
    server = ca.issue_cert("localhost", "127.0.0.1", **validity)
    server.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    return ca


def create_user_offline(data_dir, user, password):
    subprocess.run([WEIR_BIN, "user", "create", user, "--password", password,
                    "--data-dir", str(data_dir)], check=True, capture_output=True, timeout=30)


@pytest.fixture
def secure_factory(broker_factory, tmp_path):
    def start(extra_settings=None, users=USERS, expired=False):
        ca = make_certs(tmp_path, expired)
        port = free_port()
        ports = {"PLAINTEXT": port, "SSL": free_port(), "SASL_PLAINTEXT": free_port(),
                 "SASL_SSL": free_port()}
        data_dir = tmp_path / f"data-{uuid.uuid4().hex[:6]}"
        data_dir.mkdir()
        for user, password in users.items():
            create_user_offline(data_dir, user, password)
        settings = {
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
            "ssl.keystore.location": str(tmp_path / "server.pem"),
            "connection.failed.authentication.delay.ms": "200",
            # Authentication is what this file tests; authorization is test_acl.py's.
            "allow.everyone.if.no.acl.found": "true",
        }
        settings.update(extra_settings or {})
        b = broker_factory(data_dir=data_dir, settings=settings, port=port)
        return Secure(b, tmp_path, ca, ports)
    return start


@pytest.fixture
def secure(secure_factory):
    return secure_factory()


def create_topic(s: Secure, topic):
    admin = AdminClient({"bootstrap.servers": s.addr("PLAINTEXT")})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)


def confluent_roundtrip(conf, topic, n=5):
    errors = []
    p = Producer({**conf, "error_cb": errors.append})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode())
    assert p.flush(20) == 0, f"unacknowledged records; errors: {errors}"
    c = Consumer({**conf, "group.id": f"g-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                  "error_cb": errors.append})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert got == [f"v{i}".encode() for i in range(n)], f"errors: {errors}"


def kafka_python_roundtrip(conf, topic, n=5):
    from kafka import KafkaConsumer, KafkaProducer
    p = KafkaProducer(**conf)
    for i in range(n):
        p.send(topic, f"kp{i}".encode()).get(timeout=20)
    p.close()
    c = KafkaConsumer(topic, **conf, auto_offset_reset="earliest", consumer_timeout_ms=10000,
                      group_id=None)
    got = [m.value for m in c][:n]
    c.close()
    assert got == [f"kp{i}".encode() for i in range(n)]


def kcat_roundtrip(props: dict, topic, n=3):
    args = []
    for k, v in props.items():
        args += ["-X", f"{k}={v}"]
    data = "".join(f"kc{i}\n" for i in range(n))
    subprocess.run(["kcat", *args, "-P", "-t", topic], input=data.encode(), check=True,
                   timeout=60, capture_output=True)
    out = subprocess.run(["kcat", *args, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                         check=True, timeout=60, capture_output=True).stdout.decode().split()
    assert out == [f"kc{i}" for i in range(n)]


def connect_errors(conf, timeout=15, until=bool):
    """The errors a client reports connecting with `conf` (it never gets metadata), collected
    until `until(errors)` holds (by default: the first error) or the timeout."""
    errors = []
    p = Producer({**conf, "error_cb": errors.append})
    deadline = time.monotonic() + timeout
    while not until(errors) and time.monotonic() < deadline:
        p.poll(0.2)
    with pytest.raises(Exception):
        p.list_topics(timeout=2)
    return errors


# ---------------------------------------------------------------------------------------------
# Every client over every protocol.

def test_ssl_with_every_client(secure):
    topic = "ssl-" + uuid.uuid4().hex[:6]
    create_topic(secure, topic)
    conf = secure.confluent("SSL")
    confluent_roundtrip(conf, topic)
    # The broker advertises the listener the client came through, not the PLAINTEXT one.
    md = AdminClient(conf).list_topics(timeout=10)
    assert [(b.host, b.port) for b in md.brokers.values()] == [("127.0.0.1", secure.ports["SSL"])]
    kafka_python_roundtrip(secure.kafka_python("SSL"), topic + "-kp")
    kcat_roundtrip({"bootstrap.servers": secure.addr("SSL"), "security.protocol": "SSL",
                    "ssl.ca.location": secure.ca_file}, topic + "-kc")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_with_every_client(secure, mechanism):
    topic = "sasl-" + mechanism.lower() + uuid.uuid4().hex[:4]
    conf = secure.confluent("SASL_PLAINTEXT", mechanism)
    confluent_roundtrip(conf, topic)
    md = AdminClient(conf).list_topics(timeout=10)
    assert [b.port for b in md.brokers.values()] == [secure.ports["SASL_PLAINTEXT"]]
    kafka_python_roundtrip(secure.kafka_python("SASL_PLAINTEXT", mechanism, user="bob"), topic + "-kp")
    kcat_roundtrip({"bootstrap.servers": secure.addr("SASL_PLAINTEXT"),
                    "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                    "sasl.username": "alice", "sasl.password": USERS["alice"]}, topic + "-kc")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl_with_every_client(secure, mechanism):
    topic = "saslssl-" + uuid.uuid4().hex[:6]
    confluent_roundtrip(secure.confluent("SASL_SSL", mechanism), topic)
    kafka_python_roundtrip(secure.kafka_python("SASL_SSL", mechanism), topic + "-kp")
    kcat_roundtrip({"bootstrap.servers": secure.addr("SASL_SSL"), "security.protocol": "SASL_SSL",
                    "ssl.ca.location": secure.ca_file, "sasl.mechanism": mechanism,
                    "sasl.username": "bob", "sasl.password": USERS["bob"]}, topic + "-kc")


# ---------------------------------------------------------------------------------------------
# Failures, each with its error.

def auth_failed(errors):
    return any(e.code() == KafkaError._AUTHENTICATION for e in errors)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_and_unknown_user_fail_authentication(secure, mechanism):
    errors = connect_errors(secure.confluent("SASL_PLAINTEXT", mechanism, password="wrong"))
    assert auth_failed(errors), errors
    errors = connect_errors(secure.confluent("SASL_PLAINTEXT", mechanism, user="mallory",
                                             password="whatever"))
    assert auth_failed(errors), errors
    # The same failure on the wire: SASL_AUTHENTICATION_FAILED, after the configured delay.
    started = time.monotonic()
    code, _ = raw_plain_auth(secure.addr("SASL_PLAINTEXT"), "alice", "wrong")
    assert code == SASL_AUTHENTICATION_FAILED
    assert time.monotonic() - started >= 0.18
    # And the right password still works.
    code, _ = raw_plain_auth(secure.addr("SASL_PLAINTEXT"), "alice", USERS["alice"])
    assert code == 0
    assert "SASL authentication failed" in secure.broker.log_path.read_text()


def test_wrong_mechanism_is_refused_with_the_enabled_list(secure_factory):
    s = secure_factory({"sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    errors = connect_errors(s.confluent("SASL_PLAINTEXT", "PLAIN"))
    assert errors and all(e.code() != 0 for e in errors), errors
    with kwire.Conn(s.addr("SASL_PLAINTEXT")) as c:
        r = c.request(kwire.request_header_v1(API_SASL_HANDSHAKE, 1, 5), kwire.string("PLAIN"))
        assert r.i32() == 5
        assert r.i16() == UNSUPPORTED_SASL_MECHANISM
        n = r.i32()
        assert [r.string() for _ in range(n)] == ["SCRAM-SHA-512"]
        assert c.wait_closed(5) == "closed"
    confluent_roundtrip(s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-512"), "wm-" + uuid.uuid4().hex[:6])


def test_untrusted_server_certificate_fails_on_the_client(secure, tmp_path):
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    errors = connect_errors({**secure.confluent("SSL"), "ssl.ca.location": str(tmp_path / "other-ca.pem")})
    assert any(e.code() == KafkaError._SSL or "certificate verify failed" in e.str() for e in errors), errors
    # Python's TLS agrees: the chain does not verify against another CA.
    ctx = ssl.create_default_context(cafile=str(tmp_path / "other-ca.pem"))
    with socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_expired_server_certificate_fails_on_the_client(secure_factory):
    s = secure_factory(expired=True)
    # Under load librdkafka may first report the torn connection (_TRANSPORT); its retries
    # then report the handshake's verdict.
    errors = connect_errors(s.confluent("SSL"),
                            until=lambda es: any(e.code() == KafkaError._SSL for e in es))
    assert any(e.code() == KafkaError._SSL for e in errors), errors
    # The reason, as Python's TLS names it: the certificate has expired (not an unknown CA).
    ctx = ssl.create_default_context(cafile=s.ca_file)
    with socket.create_connection(("127.0.0.1", s.ports["SSL"]), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # The broker itself keeps serving its other listeners.
    confluent_roundtrip(s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256"), "exp-" + uuid.uuid4().hex[:6])


def test_client_certificate_required(secure_factory, tmp_path):
    s = secure_factory({"ssl.client.auth": "required",
                        "ssl.truststore.location": str(tmp_path / "ca.pem")})
    errors = connect_errors(s.confluent("SSL"))
    assert errors, "a client without a certificate must not get through"
    client = s.ca.issue_cert("client.example", common_name="alice", organization_name="Acme")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    conf = s.confluent("SSL", **{"ssl.certificate.location": str(tmp_path / "client.pem"),
                                 "ssl.key.location": str(tmp_path / "client.key")})
    confluent_roundtrip(conf, "mtls-" + uuid.uuid4().hex[:6])


# ---------------------------------------------------------------------------------------------
# Abuse.

def test_plaintext_client_on_tls_port_and_stalled_handshake_are_cut_off(secure_factory):
    s = secure_factory({"weir.ssl.handshake.timeout.ms": "1000"})
    # A Kafka request where a TLS ClientHello belongs.
    with kwire.Conn(s.addr("SSL")) as c:
        c.send_raw(kwire.frame(kwire.request_header_v1(kwire.API_VERSIONS, 0, 1)))
        got = read_until_closed(c.sock, 5)
        # A TLS alert record (content type 21) at most, never a Kafka answer, then the close.
        assert got == b"" or got[0] == 21, got
    # A client that connects and never says anything.
    with kwire.Conn(s.addr("SSL"), timeout=10) as c:
        started = time.monotonic()
        assert c.wait_closed(8) == "closed"
        assert 0.8 <= time.monotonic() - started < 5
    assert s.broker.alive()
    confluent_roundtrip(s.confluent("SSL"), "after-" + uuid.uuid4().hex[:6])


def read_until_closed(sock, timeout):
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise AssertionError(f"still open after {timeout}s; got {got!r}")
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"still open after {timeout}s; got {got!r}")


def test_requests_before_authentication_close_the_connection(secure):
    with kwire.Conn(secure.addr("SASL_PLAINTEXT")) as c:
        _, err, _ = kwire.api_versions(c)
        assert err == 0
        c.send_raw(kwire.frame(kwire.request_header_v1(kwire.API_METADATA, 1, 2) + kwire.i32(-1)))
        assert c.wait_closed(5) == "closed"
    # Before authentication a frame may not exceed sasl.server.max.receive.size (512 KiB): the
    # length prefix alone closes the connection, nothing of the body is waited for.
    with kwire.Conn(secure.addr("SASL_PLAINTEXT")) as c:
        c.send_raw(kwire.i32(1024 * 1024) + b"x" * 100)
        assert c.wait_closed(5) == "closed"
    with kwire.Conn(secure.addr("PLAINTEXT")) as c:
        # The same size is fine on a listener without SASL (socket.request.max.bytes rules).
        c.send_raw(kwire.i32(1024 * 1024) + b"x" * 100)
        assert c.wait_closed(1) == "open"


def raw_plain_auth(addr, user, password):
    """SaslHandshake v1 + SaslAuthenticate v0 with PLAIN; (error code, seconds to answer)."""
    with kwire.Conn(addr, timeout=30) as c:
        r = c.request(kwire.request_header_v1(API_SASL_HANDSHAKE, 1, 1), kwire.string("PLAIN"))
        r.i32()
        assert r.i16() == 0
        token = b"\0" + user.encode() + b"\0" + password.encode()
        started = time.monotonic()
        r = c.request(kwire.request_header_v1(API_SASL_AUTHENTICATE, 0, 2), kwire.nbytes(token))
        r.i32()
        return r.i16(), time.monotonic() - started


def test_flood_of_bad_authentications_does_not_stop_an_authenticated_client(secure_factory):
    s = secure_factory({"connection.failed.authentication.delay.ms": "1000"})
    topic = "flood-" + uuid.uuid4().hex[:6]
    stop = threading.Event()
    failures = []

    def attacker():
        while not stop.is_set():
            try:
                code, _ = raw_plain_auth(s.addr("SASL_PLAINTEXT"), "alice", "guess")
                failures.append(code)
            except (OSError, ConnectionError):
                pass

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(40)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        conf = s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256")
        started = time.monotonic()
        confluent_roundtrip(conf, topic, n=20)
        took = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures and set(failures) == {SASL_AUTHENTICATION_FAILED}
    # 40 connections each held a second by the delay did not hold up the honest client.
    assert took < 15, f"authenticated round trip took {took:.1f}s under the flood"
    print(f"flood: {len(failures)} failed authentications; authenticated produce+consume of 20 "
          f"records took {took:.2f}s")


# ---------------------------------------------------------------------------------------------
# Credentials through the Kafka API and the CLI.

def weir(*args, check=True):
    return subprocess.run([WEIR_BIN, *args], capture_output=True, text=True, timeout=60,
                          check=check)


def test_users_created_through_the_api_survive_kill_9(secure):
    b = ["-b", secure.addr("PLAINTEXT")]
    weir("user", "create", "carol", "--password", "carol-pw", *b)
    listed = weir("user", "list", *b).stdout
    assert "carol" in listed and "SCRAM-SHA-512" in listed and "alice" in listed
    secure.broker.kill9()
    secure.broker.start()
    confluent_roundtrip(secure.confluent("SASL_PLAINTEXT", "SCRAM-SHA-512", user="carol",
                                         password="carol-pw"), "carol-" + uuid.uuid4().hex[:6])
    weir("user", "delete", "carol", *b)
    assert "carol" not in weir("user", "list", *b).stdout
    errors = connect_errors(secure.confluent("SASL_PLAINTEXT", "SCRAM-SHA-512", user="carol",
                                             password="carol-pw"))
    assert auth_failed(errors), errors
    # The password never reaches the disk.
    stored = (secure.broker.data_dir / "meta" / "scram-credentials.json").read_text()
    assert "alice-secret" not in stored and "carol-pw" not in stored


def test_credentials_refused_to_non_super_users(secure_factory):
    s = secure_factory({"super.users": "User:alice", "allow.everyone.if.no.acl.found": "false"})
    from confluent_kafka.admin import UserScramCredentialUpsertion, ScramCredentialInfo, ScramMechanism
    upsert = UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                          b"dave-pw")
    as_bob = AdminClient(s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256", user="bob"))
    with pytest.raises(Exception, match="CLUSTER_AUTHORIZATION_FAILED|[Aa]uthoriz"):
        as_bob.alter_user_scram_credentials([upsert])["dave"].result(timeout=15)
    as_alice = AdminClient(s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256", user="alice"))
    as_alice.alter_user_scram_credentials([upsert])["dave"].result(timeout=15)
    described = as_alice.describe_user_scram_credentials(["dave"])["dave"].result(timeout=15)
    assert [(i.mechanism, i.iterations) for i in described.scram_credential_infos] == \
        [(ScramMechanism.SCRAM_SHA_256, 4096)]
    # dave authenticates with the new credential (he may not see any topic: no ACL names him).
    as_dave = AdminClient(s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256", user="dave",
                                      password="dave-pw"))
    assert as_dave.list_topics(timeout=15).topics == {}


# ---------------------------------------------------------------------------------------------
# The Java client: SASL_SSL with SCRAM-SHA-512, a user made through its admin API, and
# KIP-368 re-authentication on live connections.

def test_java_client_over_sasl_ssl_reauthenticates(broker_factory, tmp_path):
    import os
    import re
    import shutil
    from pathlib import Path
    libs = Path(os.environ.get("WEIR_JAVA_LIBS", Path.home() / ".cache" / "weir-java"))
    if shutil.which("javac") is None or not (libs / "kafka-clients-4.3.0.jar").exists():
        pytest.skip("javac or the Java client jars are missing (scripts/test installs the jars)")
    make_certs(tmp_path)
    data_dir = tmp_path / "java-data"
    data_dir.mkdir()
    create_user_offline(data_dir, "alice", USERS["alice"])
    port, sasl_ssl = free_port(), free_port()
    b = broker_factory(data_dir=data_dir, port=port, settings={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_ssl}",
        "ssl.keystore.location": str(tmp_path / "server.pem"),
        "connections.max.reauth.ms": "2000",
        "allow.everyone.if.no.acl.found": "true",
    }, extra_args=["--log", "info,weir_broker::security=debug"])
    classes = tmp_path / "classes"
    src = Path(__file__).parent / "java" / "WeirSecure.java"
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{libs}/*", str(src)], check=True,
                   capture_output=True, timeout=120)
    p = subprocess.run(["java", "-cp", f"{classes}:{libs}/*", "WeirSecure", f"127.0.0.1:{sasl_ssl}",
                        "java-secure-" + uuid.uuid4().hex[:6], str(tmp_path / "ca.pem"), "alice",
                        USERS["alice"]], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    assert p.stdout.strip().endswith("OK")
    # Some connection authenticated more than once: re-authentication on a live connection.
    peers = re.findall(r"authenticated peer=(\S+) principal=User:java-user", b.log_path.read_text())
    assert peers and max(peers.count(x) for x in peers) >= 2, peers
