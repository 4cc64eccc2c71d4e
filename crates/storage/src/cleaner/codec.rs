//! The record codecs of compressed batches, for the cleaner only: it decompresses a batch's
//! records to drop superseded ones and compresses the kept ones with the same codec. Formats
//! are Kafka's: gzip, snappy in the xerial framing Kafka's Java client writes (raw snappy is
//! read too), LZ4 frames, zstd frames.
//!
//! Anything that fails, or would decompress beyond `limit` bytes, gives `None`: the caller
//! then keeps the batch whole, as written.

use std::io::{Read, Write};

use crate::batch::Compression;

const SNAPPY_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const SNAPPY_BLOCK: usize = 32 * 1024;

/// Reads all of `r`, or `None` past `limit` bytes or on an error.
fn read_limited(r: impl Read, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1).read_to_end(&mut out).ok()?;
    (out.len() <= limit).then_some(out)
}

/// The records area of a compressed batch, decompressed.
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Option<Vec<u8>> {
    match codec {
        Compression::None => Some(data.to_vec()),
        Compression::Gzip => read_limited(flate2::read::GzDecoder::new(data), limit),
        Compression::Lz4 => read_limited(lz4::Decoder::new(data).ok()?, limit),
        Compression::Zstd => read_limited(zstd::stream::Decoder::new(data).ok()?, limit),
        Compression::Snappy => snappy_decompress(data, limit),
        Compression::Unknown(_) => None,
    }
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Option<()> {
    let len = snap::raw::decompress_len(block).ok()?;
    if out.len().checked_add(len)? > limit {
        return None;
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, out.get_mut(start..)?)
        .ok()?;
    out.truncate(start + n);
    Some(())
}

fn snappy_decompress(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let Some(mut rest) = data.strip_prefix(&SNAPPY_MAGIC[..]) else {
        snappy_block(data, &mut out, limit)?;
        return Some(out);
    };
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let block = rest.get(4..4usize.checked_add(len)?)?;
        snappy_block(block, &mut out, limit)?;
        rest = rest.get(4 + len..)?;
    }
    Some(out)
}

/// `data` compressed with `codec`.
pub fn compress(codec: Compression, data: &[u8]) -> Option<Vec<u8>> {
    match codec {
        Compression::None => Some(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).ok()?;
            e.finish().ok()
        }
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(4)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())
                .ok()?;
            e.write_all(data).ok()?;
            let (out, done) = e.finish();
            done.ok().map(|()| out)
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).ok(),
        Compression::Snappy => {
            let mut out = SNAPPY_MAGIC.to_vec();
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(SNAPPY_BLOCK) {
                let block = encoder.compress_vec(chunk).ok()?;
                out.extend_from_slice(&u32::try_from(block.len()).ok()?.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Some(out)
        }
        Compression::Unknown(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_respects_the_limit() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 97).to_be_bytes())
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data).expect("compress");
            assert_eq!(
                decompress(codec, &packed, data.len()).as_deref(),
                Some(&data[..]),
                "{codec:?}"
            );
            if codec != Compression::None {
                assert!(packed.len() < data.len() / 2, "{codec:?}");
                assert_eq!(
                    decompress(codec, &packed, data.len() - 1),
                    None,
                    "{codec:?}"
                );
            }
        }
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("raw");
        assert_eq!(
            decompress(Compression::Snappy, &raw, data.len()).as_deref(),
            Some(&data[..])
        );
    }
}
