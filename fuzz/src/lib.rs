//! Helpers shared by Weir's fuzz targets (`fuzz_targets/`): reading structured values off the
//! fuzzer's bytes, repairing CRCs and offsets so inputs get past the cheap checks and reach
//! the parsing behind them, a scratch directory for the on-disk targets, and the request
//! round trip used by both request targets.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use weir_protocol::kafka_protocol::protocol::Encodable;
use weir_protocol::{decode_request, RequestFrame};

/// Reads values off the fuzzer's bytes; past the end everything reads as zero / empty, so a
/// target never has to reject a short input.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.array())
    }

    /// A length-prefixed (u16) chunk, cut short if the input ends first.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

const LOG_OVERHEAD: usize = 12;
const MIN_BATCH_LENGTH: i32 = 49;

/// Walks `buf` as a sequence of batches by their length fields and calls `f` on each whole
/// one; stops at the first length that is too small or runs past the end.
fn for_each_batch(buf: &mut [u8], mut f: impl FnMut(&mut [u8])) {
    let mut pos = 0usize;
    while let Some(len) = buf.get(pos + 8..pos + LOG_OVERHEAD) {
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if len < MIN_BATCH_LENGTH {
            return;
        }
        let end = pos + LOG_OVERHEAD + len as usize;
        let Some(batch) = buf.get_mut(pos..end) else {
            return;
        };
        f(batch);
        pos = end;
    }
}

/// Recomputes the CRC-32C of every whole batch in `buf`, so that inputs get past the
/// checksum and reach the checks and record parsing behind it.
pub fn fix_crcs(buf: &mut [u8]) {
    for_each_batch(buf, |batch| {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    });
}

/// Rewrites the base offsets of the batches in `buf` to run on from `first` without gaps (by
/// their `lastOffsetDelta`), as a log would have written them. Does not touch the CRC (the
/// base offset is outside it).
pub fn fix_offsets(buf: &mut [u8], first: i64) {
    let mut next = first;
    for_each_batch(buf, |batch| {
        batch[..8].copy_from_slice(&next.to_be_bytes());
        let delta = i32::from_be_bytes([batch[23], batch[24], batch[25], batch[26]]);
        next = next.saturating_add(i64::from(delta.max(0)) + 1);
    });
}

/// A fresh, empty scratch directory named `name`. Under `$WEIR_FUZZ_SCRATCH` if set (scripts/fuzz
/// points it at tmpfs and removes it afterwards), else under /dev/shm or the temp directory:
/// recovery fsyncs a lot, which is cheap only on tmpfs.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = match std::env::var_os("WEIR_FUZZ_SCRATCH") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let shm = PathBuf::from("/dev/shm");
            let root = if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            };
            root.join(format!("weir-fuzz-{}", std::process::id()))
        }
    };
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// Encodes a decoded request again: header (at the header version its API and version use)
/// then body. Trailing bytes are not kept.
pub fn encode_request(frame: &RequestFrame) -> Bytes {
    let version = frame.header.request_api_version;
    let mut buf = BytesMut::new();
    frame
        .header
        .encode(&mut buf, frame.api_key.request_header_version(version))
        .expect("a decoded request header encodes");
    frame
        .body
        .encode_body(&mut buf, version)
        .unwrap_or_else(|e| panic!("a decoded {:?} v{version} body encodes: {e}", frame.api_key));
    buf.freeze()
}

/// Decodes a request frame; if it decodes, checks the round trip: the re-encoded request
/// decodes, and encoding that gives the same bytes again.
pub fn check_request(bytes: Bytes) {
    let Ok(frame) = decode_request(bytes) else {
        return;
    };
    let encoded = encode_request(&frame);
    let again = decode_request(encoded.clone()).unwrap_or_else(|e| {
        panic!(
            "re-encoded {:?} v{} does not decode: {e}",
            frame.api_key, frame.header.request_api_version
        )
    });
    assert_eq!(again.trailing, 0, "re-encoded request has trailing bytes");
    assert_eq!(
        encode_request(&again),
        encoded,
        "{:?} v{} does not round-trip",
        frame.api_key,
        frame.header.request_api_version
    );
}
