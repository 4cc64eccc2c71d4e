//! The internal link's encoding of partition access calls (the internal listener's key
//! `PARTITION_ACCESS`, 32020, version [`VERSION`]): one tag byte, then fixed-width integers
//! big-endian, strings with a u16 length, record batches as raw bytes with a u32 length
//! (never re-encoded), lists with a u32 count. A body that does not decode exactly (short,
//! an unknown tag, bytes left over) is a [`CodecError`], never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use weir_coordinator::TopicPartition;
use weir_storage::AbortedTxn;

use super::error::{Failure, FailureKind};
use crate::partition::{Isolation, ReadResult, ReadSpec, Watermarks};

/// The only version so far.
pub const VERSION: i16 = 0;

/// Why a body did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("partition access body: {reason} at byte {at}")]
pub struct CodecError {
    pub at: usize,
    pub reason: &'static str,
}

/// A call to the broker that leads the partition (or coordinates the transactional id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Read {
        tp: TopicPartition,
        spec: ReadSpec,
    },
    Watermarks {
        tp: TopicPartition,
    },
    OffsetForTimestamp {
        tp: TopicPartition,
        timestamp: i64,
    },
    /// acks=all: answered once the records are fsynced (the broker's policy) and replicated.
    Append {
        tp: TopicPartition,
        timeout_ms: u32,
        records: Bytes,
    },
    /// Long poll: answered when any partition's last stable offset passes its offset, or
    /// after `max_wait_ms`.
    Wait {
        max_wait_ms: u32,
        items: Vec<(TopicPartition, i64)>,
    },
    InitTransactional {
        transactional_id: String,
        timeout_ms: i32,
    },
    AddPartitions {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    },
    EndTxn {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Read(ReadResult),
    Watermarks(Watermarks),
    Offset(Option<(i64, i64)>),
    Appended {
        last_offset: i64,
    },
    Waited,
    Producer {
        producer_id: i64,
        producer_epoch: i16,
    },
    Done,
    Failed(Failure),
}

fn put_str(out: &mut BytesMut, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.put_u16(len);
    out.put_slice(s.as_bytes().get(..usize::from(len)).unwrap_or_default());
}

fn put_tp(out: &mut BytesMut, tp: &TopicPartition) {
    put_str(out, &tp.topic);
    out.put_i32(tp.partition);
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.put_slice(b);
}

fn put_len(out: &mut BytesMut, n: usize) {
    out.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
}

fn put_watermarks(out: &mut BytesMut, w: &Watermarks) {
    out.put_i64(w.log_start_offset);
    out.put_i64(w.high_watermark);
    out.put_i64(w.last_stable_offset);
}

impl Request {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Request::Read { tp, spec } => {
                out.put_u8(0);
                put_tp(&mut out, tp);
                out.put_i64(spec.offset);
                out.put_u32(u32::try_from(spec.max_bytes).unwrap_or(u32::MAX));
                out.put_u8(u8::from(spec.min_one_batch));
                out.put_u8(match spec.isolation {
                    Isolation::ReadUncommitted => 0,
                    Isolation::ReadCommitted => 1,
                });
                out.put_i32(spec.leader_epoch.unwrap_or(-1));
            }
            Request::Watermarks { tp } => {
                out.put_u8(1);
                put_tp(&mut out, tp);
            }
            Request::OffsetForTimestamp { tp, timestamp } => {
                out.put_u8(2);
                put_tp(&mut out, tp);
                out.put_i64(*timestamp);
            }
            Request::Append {
                tp,
                timeout_ms,
                records,
            } => {
                out.put_u8(3);
                put_tp(&mut out, tp);
                out.put_u32(*timeout_ms);
                put_bytes(&mut out, records);
            }
            Request::Wait { max_wait_ms, items } => {
                out.put_u8(4);
                out.put_u32(*max_wait_ms);
                put_len(&mut out, items.len());
                for (tp, offset) in items {
                    put_tp(&mut out, tp);
                    out.put_i64(*offset);
                }
            }
            Request::InitTransactional {
                transactional_id,
                timeout_ms,
            } => {
                out.put_u8(5);
                put_str(&mut out, transactional_id);
                out.put_i32(*timeout_ms);
            }
            Request::AddPartitions {
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
            } => {
                out.put_u8(6);
                put_str(&mut out, transactional_id);
                out.put_i64(*producer_id);
                out.put_i16(*producer_epoch);
                put_len(&mut out, partitions.len());
                for tp in partitions {
                    put_tp(&mut out, tp);
                }
            }
            Request::EndTxn {
                transactional_id,
                producer_id,
                producer_epoch,
                commit,
            } => {
                out.put_u8(7);
                put_str(&mut out, transactional_id);
                out.put_i64(*producer_id);
                out.put_i16(*producer_epoch);
                out.put_u8(u8::from(*commit));
            }
        }
        out.freeze()
    }

    pub fn decode(body: Bytes) -> Result<Request, CodecError> {
        let mut r = Reader::new(body);
        let request = match r.u8()? {
            0 => {
                let tp = r.tp()?;
                let offset = r.i64()?;
                let max_bytes = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                let min_one_batch = r.bool()?;
                let isolation = match r.u8()? {
                    0 => Isolation::ReadUncommitted,
                    1 => Isolation::ReadCommitted,
                    _ => return Err(r.error("unknown isolation")),
                };
                let epoch = r.i32()?;
                Request::Read {
                    tp,
                    spec: ReadSpec {
                        offset,
                        max_bytes,
                        min_one_batch,
                        isolation,
                        leader_epoch: (epoch >= 0).then_some(epoch),
                    },
                }
            }
            1 => Request::Watermarks { tp: r.tp()? },
            2 => Request::OffsetForTimestamp {
                tp: r.tp()?,
                timestamp: r.i64()?,
            },
            3 => Request::Append {
                tp: r.tp()?,
                timeout_ms: r.u32()?,
                records: r.bytes()?,
            },
            4 => {
                let max_wait_ms = r.u32()?;
                let n = r.u32()?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push((r.tp()?, r.i64()?));
                }
                Request::Wait { max_wait_ms, items }
            }
            5 => Request::InitTransactional {
                transactional_id: r.string()?,
                timeout_ms: r.i32()?,
            },
            6 => {
                let transactional_id = r.string()?;
                let producer_id = r.i64()?;
                let producer_epoch = r.i16()?;
                let n = r.u32()?;
                let mut partitions = Vec::new();
                for _ in 0..n {
                    partitions.push(r.tp()?);
                }
                Request::AddPartitions {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partitions,
                }
            }
            7 => Request::EndTxn {
                transactional_id: r.string()?,
                producer_id: r.i64()?,
                producer_epoch: r.i16()?,
                commit: r.bool()?,
            },
            _ => return Err(r.error("unknown request tag")),
        };
        r.end()?;
        Ok(request)
    }
}

impl Answer {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Answer::Read(read) => {
                out.put_u8(0);
                put_watermarks(&mut out, &read.watermarks);
                match &read.aborted {
                    None => out.put_u8(0),
                    Some(aborted) => {
                        out.put_u8(1);
                        put_len(&mut out, aborted.len());
                        for a in aborted {
                            out.put_i64(a.producer_id);
                            out.put_i64(a.first_offset);
                            out.put_i64(a.last_offset);
                        }
                    }
                }
                put_bytes(&mut out, &read.records);
            }
            Answer::Watermarks(w) => {
                out.put_u8(1);
                put_watermarks(&mut out, w);
            }
            Answer::Offset(found) => {
                out.put_u8(2);
                match found {
                    None => out.put_u8(0),
                    Some((offset, timestamp)) => {
                        out.put_u8(1);
                        out.put_i64(*offset);
                        out.put_i64(*timestamp);
                    }
                }
            }
            Answer::Appended { last_offset } => {
                out.put_u8(3);
                out.put_i64(*last_offset);
            }
            Answer::Waited => out.put_u8(4),
            Answer::Producer {
                producer_id,
                producer_epoch,
            } => {
                out.put_u8(5);
                out.put_i64(*producer_id);
                out.put_i16(*producer_epoch);
            }
            Answer::Done => out.put_u8(6),
            Answer::Failed(f) => {
                out.put_u8(7);
                out.put_u8(f.kind as u8);
                out.put_i16(f.code);
                put_str(&mut out, &f.message);
            }
        }
        out.freeze()
    }

    pub fn decode(body: Bytes) -> Result<Answer, CodecError> {
        let mut r = Reader::new(body);
        let answer = match r.u8()? {
            0 => {
                let watermarks = r.watermarks()?;
                let aborted = if r.bool()? {
                    let n = r.u32()?;
                    let mut list = Vec::new();
                    for _ in 0..n {
                        list.push(AbortedTxn {
                            producer_id: r.i64()?,
                            first_offset: r.i64()?,
                            last_offset: r.i64()?,
                        });
                    }
                    Some(list)
                } else {
                    None
                };
                Answer::Read(ReadResult {
                    records: r.bytes()?,
                    watermarks,
                    aborted,
                })
            }
            1 => Answer::Watermarks(r.watermarks()?),
            2 => Answer::Offset(if r.bool()? {
                Some((r.i64()?, r.i64()?))
            } else {
                None
            }),
            3 => Answer::Appended {
                last_offset: r.i64()?,
            },
            4 => Answer::Waited,
            5 => Answer::Producer {
                producer_id: r.i64()?,
                producer_epoch: r.i16()?,
            },
            6 => Answer::Done,
            7 => {
                let kind =
                    FailureKind::from_u8(r.u8()?).ok_or_else(|| r.error("unknown failure kind"))?;
                Answer::Failed(Failure {
                    kind,
                    code: r.i16()?,
                    message: r.string()?,
                })
            }
            _ => return Err(r.error("unknown answer tag")),
        };
        r.end()?;
        Ok(answer)
    }
}

/// A bounds-checked cursor over a body.
struct Reader {
    buf: Bytes,
    len: usize,
}

impl Reader {
    fn new(buf: Bytes) -> Reader {
        let len = buf.len();
        Reader { buf, len }
    }

    fn error(&self, reason: &'static str) -> CodecError {
        CodecError {
            at: self.len - self.buf.remaining(),
            reason,
        }
    }

    fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.buf.remaining() < n {
            return Err(self.error("body too short"));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    fn bool(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error("a flag other than 0 or 1")),
        }
    }

    fn i16(&mut self) -> Result<i16, CodecError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self) -> Result<i32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    fn string(&mut self) -> Result<String, CodecError> {
        self.need(2)?;
        let n = usize::from(self.buf.get_u16());
        self.need(n)?;
        let raw = self.buf.split_to(n);
        String::from_utf8(raw.to_vec()).map_err(|_| self.error("a string that is not UTF-8"))
    }

    fn tp(&mut self) -> Result<TopicPartition, CodecError> {
        let topic = self.string()?;
        Ok(TopicPartition::new(topic, self.i32()?))
    }

    fn watermarks(&mut self) -> Result<Watermarks, CodecError> {
        Ok(Watermarks {
            log_start_offset: self.i64()?,
            high_watermark: self.i64()?,
            last_stable_offset: self.i64()?,
        })
    }

    fn end(&self) -> Result<(), CodecError> {
        if self.buf.has_remaining() {
            return Err(self.error("bytes after the body"));
        }
        Ok(())
    }
}
