"""Certificate reload without restart (issue 14): the broker re-reads its PEM files when they
change; new handshakes get the new certificate, a connection made before keeps working, and a
file that does not load leaves the previous certificate in service."""

from __future__ import annotations

import os
import socket
import ssl
import time
import uuid

import pytest
import trustme
from confluent_kafka import Producer

# secure_factory is a fixture: imported so that pytest finds it here.
from test_security import confluent_roundtrip, create_topic, secure_factory  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def handshake(addr: tuple[str, int], cafile: str) -> bytes:
    """The DER certificate the broker serves, verified against `cafile`."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(addr, timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


def replace(path, pem: bytes):
    """Writes `pem` over `path` atomically (a rename, as cert-manager and certbot do), with a
    modification time that differs from the old file's even on a coarse file system."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(pem)
    later = time.time() + 2
    os.utime(tmp, (later, later))
    os.replace(tmp, path)


def test_a_renewed_certificate_is_served_without_restart(secure_factory, tmp_path):
    s = secure_factory()
    addr = ("127.0.0.1", s.ports["SSL"])
    old_ca = str(tmp_path / "ca.pem")
    first = handshake(addr, old_ca)
    topic = "reload-" + uuid.uuid4().hex[:6]
    create_topic(s, topic)
    # A producer connected before the renewal.
    errors = []
    before = Producer({**s.confluent("SSL"), "error_cb": errors.append})
    before.produce(topic, b"before")
    assert before.flush(20) == 0, errors

    # A broken file first: the broker keeps the certificate it has.
    server = tmp_path / "server.pem"
    replace(server, b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    time.sleep(1.2)
    assert handshake(addr, old_ca) == first

    new_ca = trustme.CA()
    new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.pem"))
    cert = new_ca.issue_cert("localhost", "127.0.0.1")
    replace(server, cert.private_key_and_cert_chain_pem.bytes())
    # The files are looked at once a second, by a handshake.
    deadline = time.monotonic() + 10
    while True:
        try:
            served = handshake(addr, str(tmp_path / "new-ca.pem"))
            break
        except ssl.SSLCertVerificationError:
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.3)
    assert served != first
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(addr, old_ca)
    assert s.broker.alive()

    # The connection made before the renewal still works; new clients trust the new CA.
    before.produce(topic, b"after")
    assert before.flush(20) == 0, errors
    confluent_roundtrip({**s.confluent("SSL"), "ssl.ca.location": str(tmp_path / "new-ca.pem")},
                        "after-" + uuid.uuid4().hex[:6])
    assert "TLS certificate reloaded" in s.broker.log_path.read_text()
