//! Barrier alignment for operators with several inputs (aligned asynchronous barrier
//! snapshotting, Carbone et al. 2015): once barrier N arrived on an input, that input is not
//! read until barrier N arrived on every other input; then the operator forwards barrier N
//! and reads all of them again. Everything before barrier N on any input is thus processed
//! before it, and nothing after it, so the operator's state at the barrier is epoch N's.
//!
//! In the fused single-task runtime the pipeline delivers every source's barrier in turn, so
//! nothing arrives behind a barrier; [`Aligner`] still buffers what does, which is what a
//! pusher that cannot stop reading would need. Split over tasks and channels,
//! [`run_aligned`] simply stops polling the blocked inputs.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::Poll;

use arrow_array::RecordBatch;
use tokio::sync::mpsc;

use crate::message::Message;

/// What an aligned multi-input operator processes, in order.
#[derive(Clone, Debug)]
pub enum Aligned {
    Batch {
        port: usize,
        batch: RecordBatch,
    },
    /// The minimum of the inputs' watermarks moved forward.
    Watermark(i64),
    /// Every input delivered this barrier.
    Barrier(u64),
}

pub struct Aligner {
    /// Per input: the barrier it delivered and the others have not yet.
    blocked: Vec<Option<u64>>,
    /// Per input: messages that arrived behind its barrier.
    buffered: Vec<VecDeque<Message>>,
    buffered_bytes: usize,
    watermarks: Vec<Option<i64>>,
    emitted: Option<i64>,
    /// Inputs that ended: they hold back neither barriers nor watermarks.
    closed: Vec<bool>,
}

impl Aligner {
    pub fn new(inputs: usize) -> Aligner {
        Aligner {
            blocked: vec![None; inputs],
            buffered: (0..inputs).map(|_| VecDeque::new()).collect(),
            buffered_bytes: 0,
            watermarks: vec![None; inputs],
            emitted: None,
            closed: vec![false; inputs],
        }
    }

    /// Whether `port` delivered a barrier the others have not: it should not be read.
    pub fn is_blocked(&self, port: usize) -> bool {
        self.blocked.get(port).is_some_and(Option::is_some)
    }

    /// Bytes of batches held behind barriers.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Takes `msg` from input `port` and appends what may be processed now to `out`.
    pub fn push(&mut self, port: usize, msg: Message, out: &mut Vec<Aligned>) {
        if self.is_blocked(port) {
            if let Message::Batch(b) = &msg {
                self.buffered_bytes += b.get_array_memory_size();
            }
            if let Some(q) = self.buffered.get_mut(port) {
                q.push_back(msg);
            }
            return;
        }
        match msg {
            Message::Batch(batch) => out.push(Aligned::Batch { port, batch }),
            Message::Watermark(w) => {
                if let Some(slot) = self.watermarks.get_mut(port) {
                    *slot = Some(slot.map_or(w, |old| old.max(w)));
                }
                self.advance_watermark(out);
            }
            Message::Barrier(n) => {
                if let Some(slot) = self.blocked.get_mut(port) {
                    *slot = Some(n);
                }
                self.complete_barrier(n, out);
            }
        }
    }

    /// Input `port` ended (its channel closed).
    pub fn close(&mut self, port: usize, out: &mut Vec<Aligned>) {
        if let Some(c) = self.closed.get_mut(port) {
            *c = true;
        }
        if let Some(n) = self.blocked.iter().flatten().next().copied() {
            self.complete_barrier(n, out);
        }
        self.advance_watermark(out);
    }

    fn advance_watermark(&mut self, out: &mut Vec<Aligned>) {
        let open = self
            .watermarks
            .iter()
            .zip(&self.closed)
            .filter(|(_, c)| !**c);
        let min = open
            .map(|(w, _)| *w)
            .try_fold(i64::MAX, |m, w| w.map(|w| m.min(w)));
        if let Some(min) = min.filter(|m| *m != i64::MAX) {
            if self.emitted.is_none_or(|e| min > e) {
                self.emitted = Some(min);
                out.push(Aligned::Watermark(min));
            }
        }
    }

    fn complete_barrier(&mut self, n: u64, out: &mut Vec<Aligned>) {
        let all = self
            .blocked
            .iter()
            .zip(&self.closed)
            .all(|(b, closed)| *closed || *b == Some(n));
        if all {
            out.push(Aligned::Barrier(n));
            self.blocked.iter_mut().for_each(|b| *b = None);
            self.release(out);
        }
    }

    /// Replays what waited behind the barrier just forwarded, until an input blocks again.
    fn release(&mut self, out: &mut Vec<Aligned>) {
        for port in 0..self.buffered.len() {
            while !self.is_blocked(port) {
                let Some(msg) = self.buffered.get_mut(port).and_then(VecDeque::pop_front) else {
                    break;
                };
                if let Message::Batch(b) = &msg {
                    self.buffered_bytes = self
                        .buffered_bytes
                        .saturating_sub(b.get_array_memory_size());
                }
                self.push(port, msg, out);
            }
        }
    }
}

/// Runs a union's alignment over channels: one task per upstream, this task merging them.
/// Ends when every input is closed; a barrier is forwarded only once all open inputs
/// delivered it (an input that closed delivers no more).
pub async fn run_aligned(mut inputs: Vec<mpsc::Receiver<Message>>, output: mpsc::Sender<Message>) {
    let mut aligner = Aligner::new(inputs.len());
    let mut open = vec![true; inputs.len()];
    let mut next = 0usize;
    let mut out = Vec::new();
    while open.iter().any(|o| *o) {
        let got = poll_fn(|cx| {
            let n = inputs.len();
            for k in 0..n {
                let port = (next + k) % n;
                if !open.get(port).copied().unwrap_or(false) || aligner.is_blocked(port) {
                    continue;
                }
                if let Some(rx) = inputs.get_mut(port) {
                    if let Poll::Ready(msg) = rx.poll_recv(cx) {
                        return Poll::Ready((port, msg));
                    }
                }
            }
            Poll::Pending
        })
        .await;
        next = got.0 + 1;
        match got {
            (port, Some(msg)) => aligner.push(port, msg, &mut out),
            (port, None) => {
                if let Some(o) = open.get_mut(port) {
                    *o = false;
                }
                aligner.close(port, &mut out);
            }
        }
        for a in out.drain(..) {
            let msg = match a {
                Aligned::Batch { batch, .. } => Message::Batch(batch),
                Aligned::Watermark(w) => Message::Watermark(w),
                Aligned::Barrier(n) => Message::Barrier(n),
            };
            if output.send(msg).await.is_err() {
                return;
            }
        }
    }
}
