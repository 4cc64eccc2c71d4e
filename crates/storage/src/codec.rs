//! The record codecs of compressed batches: the one place Weir inflates a batch's records
//! (the cleaner, to drop superseded records; the broker, to check records produced to a
//! compacted topic) and compresses them again (the cleaner). Formats are Kafka's: gzip
//! (concatenated members too), snappy in the xerial framing Kafka's Java client writes (raw
//! snappy is read too), LZ4 frames, zstd frames.
//!
//! Output is bounded by `limit`, checked while inflating: a small batch that claims to expand
//! to gigabytes is refused without allocating them.

use std::io::{Read, Write};

use crate::batch::Compression;

const SNAPPY_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const SNAPPY_BLOCK: usize = 32 * 1024;

/// Why a batch's records could not be inflated.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("cannot decompress a {codec:?} batch: {source}")]
    Failed {
        codec: Compression,
        #[source]
        source: std::io::Error,
    },
    #[error("a {codec:?} batch expands to more than {limit} bytes")]
    TooLarge { codec: Compression, limit: usize },
    #[error("batch uses unknown compression codec {0}")]
    UnknownCodec(u8),
}

/// Reads all of `r`, refusing more than `limit` bytes.
fn read_limited(
    codec: Compression,
    r: impl Read,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    r.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| DecompressError::Failed { codec, source })?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { codec, limit });
    }
    Ok(out)
}

/// The records area of a compressed batch, decompressed; `None` when it cannot be (see
/// [`decompress_checked`] for why).
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Option<Vec<u8>> {
    decompress_checked(codec, data, limit).ok()
}

/// The records area of a compressed batch, decompressed, at most `limit` bytes.
pub fn decompress_checked(
    codec: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let failed = |source| DecompressError::Failed { codec, source };
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_limited(codec, flate2::read::MultiGzDecoder::new(data), limit),
        Compression::Lz4 => read_limited(codec, lz4::Decoder::new(data).map_err(failed)?, limit),
        Compression::Zstd => read_limited(
            codec,
            zstd::stream::Decoder::new(data).map_err(failed)?,
            limit,
        ),
        Compression::Snappy => {
            snappy_decompress(data, limit).ok_or_else(|| DecompressError::Failed {
                codec,
                source: std::io::Error::other("invalid snappy data or beyond the limit"),
            })
        }
        Compression::Unknown(c) => Err(DecompressError::UnknownCodec(c)),
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
