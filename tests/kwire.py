"""Hand-rolled Kafka wire protocol pieces for tests that must send exactly the bytes they mean.

Only what the bad-input tests need: request framing, ApiVersions, Metadata (v1, enough to see
whether a topic exists), Produce v3..v8 (non-flexible) and a v2 record batch encoder with an
explicit CRC so a test can corrupt it on purpose.
"""

from __future__ import annotations

import socket
import struct
import time

API_PRODUCE = 0
API_METADATA = 3
API_VERSIONS = 18

# ---------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), table driven. The standard library only has zlib's CRC-32.

_CRC32C_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---------------------------------------------------------------------------------------------
# Primitive encoders.

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    """Zig-zag signed varint (also used for varlong)."""
    return uvarint((v << 1) ^ (v >> 63))


# ---------------------------------------------------------------------------------------------
# Request framing.

def request_header_v1(api_key, api_version, correlation_id, client_id="weir-tests"):
    return i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)


def request_header_v2(api_key, api_version, correlation_id, client_id="weir-tests"):
    return request_header_v1(api_key, api_version, correlation_id, client_id) + uvarint(0)


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"response truncated at {self.pos} reading {fmt}: {self.data!r}")
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return v

    def i8(self):
        return self._take(">b")

    def i16(self):
        return self._take(">h")

    def i32(self):
        return self._take(">i")

    def i64(self):
        return self._take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s.decode()

    def uvarint(self):
        shift = 0
        result = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def remaining(self):
        return len(self.data) - self.pos


class Conn:
    """One raw TCP connection to the broker."""

    def __init__(self, bootstrap: str, timeout: float = 5.0):
        # A bootstrap list (WEIR_CLUSTER) connects to its first broker.
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self._recv_exact(4))
        if n < 0 or n > 64 * 1024 * 1024:
            raise ValueError(f"absurd response length {n}")
        return self._recv_exact(n)

    def request(self, header: bytes, body: bytes) -> Reader:
        self.send_raw(frame(header + body))
        return Reader(self.recv_frame())

    def wait_closed(self, timeout=None) -> str:
        """Waits for the broker to close the connection.

        Returns "closed" when it did, "response" when it answered with a frame instead, and
        "open" when neither happened in `timeout` seconds.
        """
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        buf = b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                return "closed"
            if not chunk:
                return "closed" if not buf else "response"
            buf += chunk
            if len(buf) >= 4:
                (n,) = struct.unpack(">i", buf[:4])
                if len(buf) >= 4 + n:
                    return "response"
        return "response" if buf else "open"


# ---------------------------------------------------------------------------------------------
# ApiVersions.

def api_versions(conn: Conn, version=0, correlation_id=1):
    """Sends ApiVersions and returns (correlation_id, error_code, {api_key: (min, max)}).

    The response header is always v0; the body is parsed as v0, which is right for v0..v2 and for
    an unsupported version (the broker then answers with a v0 body), not for a supported v3+.
    """
    if version >= 3:
        header = request_header_v2(API_VERSIONS, version, correlation_id)
        body = compact_string("weir-tests") + compact_string("1.0") + uvarint(0)
    else:
        header = request_header_v1(API_VERSIONS, version, correlation_id)
        body = b""
    r = conn.request(header, body)
    return parse_api_versions_v0(r)


def parse_api_versions_v0(r: Reader):
    corr = r.i32()
    error = r.i16()
    n = r.i32()
    if n < 0 or n > 1000:
        raise ValueError(f"bad api_keys array length {n}")
    apis = {}
    for _ in range(n):
        key = r.i16()
        lo = r.i16()
        hi = r.i16()
        apis[key] = (lo, hi)
    return corr, error, apis


# ---------------------------------------------------------------------------------------------
# Metadata v1: topic names -> (error_code, partition count).

def metadata_v1(conn: Conn, topics, correlation_id=7):
    """topics=None asks for all topics."""
    if topics is None:
        body = i32(-1)
    else:
        body = i32(len(topics)) + b"".join(string(t) for t in topics)
    r = conn.request(request_header_v1(API_METADATA, 1, correlation_id), body)
    assert r.i32() == correlation_id
    for _ in range(r.i32()):  # brokers
        r.i32()
        r.string()
        r.i32()
        r.string()  # rack
    r.i32()  # controller id
    out = {}
    for _ in range(r.i32()):
        err = r.i16()
        name = r.string()
        r.i8()  # is_internal
        nparts = r.i32()
        for _ in range(nparts):
            r.i16()
            r.i32()
            r.i32()
            for _ in range(r.i32()):
                r.i32()
            for _ in range(r.i32()):
                r.i32()
        out[name] = (err, nparts)
    return out


# ---------------------------------------------------------------------------------------------
# Record batch v2.

def encode_record(offset_delta, timestamp_delta, key, value, headers=()):
    body = (
        i8(0)
        + varint(timestamp_delta)
        + varint(offset_delta)
        + (varint(-1) if key is None else varint(len(key)) + key)
        + (varint(-1) if value is None else varint(len(value)) + value)
        + varint(len(headers))
    )
    for hk, hv in headers:
        hkb = hk.encode()
        body += varint(len(hkb)) + hkb
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_timestamp=None, corrupt_crc=False, producer=(-1, -1, -1),
                 transactional=False):
    """records: list of (key, value, headers); producer: (id, epoch, base sequence).
    Returns (batch bytes, the CRC written)."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    recs = b"".join(
        encode_record(i, 0, k, v, h) for i, (k, v, h) in enumerate(records)
    )
    producer_id, producer_epoch, base_sequence = producer
    after_crc = (
        i16(0x10 if transactional else 0)  # attributes: no compression, CreateTime
        + i32(len(records) - 1)  # last offset delta
        + i64(base_timestamp)
        + i64(base_timestamp)
        + i64(producer_id)
        + i16(producer_epoch)
        + i32(base_sequence)
        + i32(len(records))
        + recs
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    after_length = i32(-1) + i8(2) + struct.pack(">I", crc) + after_crc  # leader epoch, magic
    return i64(0) + i32(len(after_length)) + after_length, crc


# ---------------------------------------------------------------------------------------------
# Produce v3..v8.

def produce(conn: Conn, version, topic, partition, records_bytes, acks=-1, correlation_id=11,
            timeout_ms=5000, transactional_id=None):
    """Sends one Produce request for one partition; returns (error_code, base_offset)."""
    assert 3 <= version <= 8, version
    body = (
        string(transactional_id)
        + i16(acks)
        + i32(timeout_ms)
        + i32(1)
        + string(topic)
        + i32(1)
        + i32(partition)
        + nbytes(records_bytes)
    )
    r = conn.request(request_header_v1(API_PRODUCE, version, correlation_id), body)
    corr = r.i32()
    assert corr == correlation_id, (corr, correlation_id)
    results = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            index = r.i32()
            err = r.i16()
            base_offset = r.i64()
            r.i64()  # log append time
            if version >= 5:
                r.i64()  # log start offset
            if version >= 8:
                for _ in range(r.i32()):
                    r.i32()
                    r.string()
                r.string()  # error message
            results[(name, index)] = (err, base_offset)
    assert list(results) == [(topic, partition)], results
    return results[(topic, partition)]


def pick_produce_version(conn: Conn) -> int:
    _, err, apis = api_versions(conn, version=0)
    assert err == 0
    lo, hi = apis[API_PRODUCE]
    v = min(hi, 8)
    assert v >= max(lo, 3), f"broker's Produce versions {lo}..{hi} leave no v3..v8"
    return v
