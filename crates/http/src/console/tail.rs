//! The message browser's **live tail** (design §4): Server-Sent Events of the records
//! appended after the page opened, read committed, with the browser's filters.
//!
//! Backpressure: each viewer has one task and a channel of [`BUFFER`] events. The task reads
//! only after it has reserved a slot, that is after the viewer (through hyper and the socket)
//! took the previous event, so a slow viewer costs at most one event of memory, never a queue.
//! Once it has a slot again, a partition more than [`MAX_BEHIND`] records behind its end is
//! jumped forward to the last [`KEEP`] records and the viewer gets a `skipped` event saying
//! which offsets it missed: what it sees plus what it was told it skipped covers every
//! offset. Closing the page closes the connection, which drops the receiver; the task sees
//! the channel closed at its next reservation or while waiting for records, and ends.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::mpsc;
use weir_broker::partition::Partition;
use weir_broker::state::State;

use super::browse::{self, Budget, Filter, Message, Request, Start};

/// Events buffered per viewer.
pub const BUFFER: usize = 1;
/// Records one `records` event carries at most.
pub const MAX_EVENT: usize = 200;
/// A partition further behind than this when the viewer is ready again is skipped forward.
pub const MAX_BEHIND: i64 = 1_000;
/// Records kept (shown) of a partition that was skipped forward.
pub const KEEP: i64 = 100;
/// A comment line this often on an idle stream: writing is how a closed connection is
/// noticed while nothing else is sent.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long the task waits for new records before it checks the viewer is still there.
const IDLE: Duration = Duration::from_secs(10);
/// One read's budget: a filter that matches little must not hold a worker long.
const READ_BUDGET: Budget = Budget {
    max_records: 20_000,
    max_bytes: 8 << 20,
    max_time: Duration::from_millis(250),
};

/// Live tails open now, for `/api/tails` (and the test that closes a page).
#[derive(Debug, Default)]
pub struct Tails {
    open: AtomicUsize,
    started: AtomicUsize,
}

#[derive(Debug, Serialize)]
pub struct TailCounts {
    pub open: usize,
    pub started: usize,
}

impl Tails {
    pub fn counts(&self) -> TailCounts {
        TailCounts {
            open: self.open.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
        }
    }
}

/// Counts a tail open for as long as its task lives.
struct Open(Arc<Tails>);

impl Open {
    fn new(t: Arc<Tails>) -> Open {
        t.open.fetch_add(1, Ordering::Relaxed);
        t.started.fetch_add(1, Ordering::Relaxed);
        Open(t)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Offsets of one partition the viewer did not get.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub partition: i32,
    /// The first offset skipped.
    pub from: i64,
    /// The first offset shown again.
    pub to: i64,
}

/// Where a partition `behind` records behind its `end` goes on from: `None` when it is close
/// enough to read everything.
pub fn catch_up(position: i64, end: i64) -> Option<i64> {
    (end - position > MAX_BEHIND).then(|| end - KEEP)
}

/// The tail's subject: a topic, optionally one partition, and the browser's filters.
#[derive(Debug, Clone)]
pub struct TailRequest {
    pub topic: String,
    pub partition: Option<i32>,
    pub filter: Filter,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
}

/// The partitions tailed and their positions (each at its end now).
fn start(state: &State, req: &TailRequest) -> Result<Vec<(Arc<Partition>, i64)>, TailError> {
    let t = state
        .topic(&req.topic)
        .ok_or_else(|| TailError::UnknownTopic(req.topic.clone()))?;
    let parts = match req.partition {
        Some(p) => vec![t.partition(p).ok_or(TailError::UnknownPartition {
            topic: req.topic.clone(),
            partition: p,
        })?],
        None => t.all_partitions(),
    };
    Ok(parts
        .into_iter()
        .map(|p| {
            let end = p.last_stable_offset();
            (p, end)
        })
        .collect())
}

/// Starts a viewer's task and answers its event stream.
pub fn open(state: Arc<State>, tails: Arc<Tails>, req: TailRequest) -> Result<Response, TailError> {
    let positions = start(&state, &req)?;
    let (tx, rx) = mpsc::channel(BUFFER);
    let open = Open::new(tails);
    tokio::spawn(async move {
        let _open = open;
        run(state, req, positions, tx).await;
    });
    Ok(Sse::new(Events(rx))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// What the task sends a viewer; each becomes one SSE event of the same name.
#[derive(Debug)]
pub enum TailEvent {
    /// Where the tail starts: (partition, offset) of each partition.
    Start(Vec<(i32, i64)>),
    Records(Vec<Message>),
    Skipped(Vec<Skipped>),
    /// The tail stopped (a read failed).
    Error(String),
}

impl TailEvent {
    fn sse(&self) -> Event {
        let (name, data) = match self {
            TailEvent::Start(s) => ("start", serde_json::to_string(s)),
            TailEvent::Records(r) => ("records", serde_json::to_string(r)),
            TailEvent::Skipped(s) => ("skipped", serde_json::to_string(s)),
            TailEvent::Error(e) => ("error", serde_json::to_string(e)),
        };
        Event::default().event(name).data(data.unwrap_or_default())
    }
}

/// The viewer's events, as the SSE body polls them.
pub struct Events(mpsc::Receiver<TailEvent>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(|e| Ok(e.sse())))
    }
}

async fn run(
    state: Arc<State>,
    req: TailRequest,
    mut positions: Vec<(Arc<Partition>, i64)>,
    tx: mpsc::Sender<TailEvent>,
) {
    let started: Vec<(i32, i64)> = positions.iter().map(|(p, o)| (p.index(), *o)).collect();
    // The first event says where the tail starts, so the viewer knows what "after" means.
    if tx.send(TailEvent::Start(started)).await.is_err() {
        return;
    }
    loop {
        let versions: Vec<u64> = positions.iter().map(|(p, _)| p.version()).collect();
        // Backpressure: nothing is read until the viewer took the previous event.
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        let skipped: Vec<Skipped> = positions
            .iter_mut()
            .filter_map(|(p, pos)| {
                let to = catch_up(*pos, p.last_stable_offset())?;
                let s = Skipped {
                    partition: p.index(),
                    from: *pos,
                    to,
                };
                *pos = to;
                Some(s)
            })
            .collect();
        if !skipped.is_empty() {
            permit.send(TailEvent::Skipped(skipped));
            continue;
        }
        let cursor = positions
            .iter()
            .map(|(p, o)| format!("{}:{o}", p.index()))
            .collect::<Vec<_>>()
            .join(",");
        let browse_req = Request {
            partition: None,
            start: Start::Beginning,
            filter: req.filter.clone(),
            cursor: Some(cursor),
            limit: MAX_EVENT,
        };
        let s = state.clone();
        let topic = req.topic.clone();
        let read = tokio::task::spawn_blocking(move || {
            browse::browse(&s, &topic, &browse_req, &READ_BUDGET)
        })
        .await;
        let b = match read {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                permit.send(TailEvent::Error(e.to_string()));
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "live tail read panicked");
                return;
            }
        };
        let mut moved = false;
        for (index, next) in &b.positions {
            if let Some((_, pos)) = positions.iter_mut().find(|(p, _)| p.index() == *index) {
                moved |= *next > *pos;
                *pos = (*pos).max(*next);
            }
        }
        if !b.messages.is_empty() {
            permit.send(TailEvent::Records(b.messages));
            continue;
        }
        drop(permit);
        if moved {
            // Records were read but none matched: read on.
            continue;
        }
        let watched: Vec<(&Partition, u64)> = positions
            .iter()
            .zip(&versions)
            .map(|((p, _), v)| (p.as_ref(), *v))
            .collect();
        tokio::select! {
            () = weir_broker::partition::any_changed(&watched) => {}
            () = tx.closed() => return,
            () = tokio::time::sleep(IDLE) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_far_behind_is_moved_to_the_last_records() {
        assert_eq!(catch_up(0, 10), None);
        assert_eq!(catch_up(0, MAX_BEHIND), None);
        assert_eq!(catch_up(0, MAX_BEHIND + 1), Some(MAX_BEHIND + 1 - KEEP));
        assert_eq!(catch_up(500, 10_500), Some(10_500 - KEEP));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_viewer_gets_skipped_events_that_account_for_every_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = weir_broker::testkit::state(dir.path(), &[]);
        state
            .create_topic("t", 1, 1, Default::default())
            .await
            .expect("topic");
        let tails = Arc::new(Tails::default());
        let req = TailRequest {
            topic: "t".into(),
            partition: None,
            filter: Filter::default(),
        };
        let positions = start(&state, &req).expect("start");
        let (tx, mut rx) = mpsc::channel(BUFFER);
        let _open = Open::new(tails.clone());
        let task = tokio::spawn(run(state.clone(), req, positions, tx));
        // The start event fills the one slot; the viewer reads nothing while 5,000 records
        // are appended, so the task cannot read ahead.
        for _ in 0..50 {
            super::super::tests::append(&state, "t", 0, 100).await;
        }
        let mut seen: Vec<i64> = Vec::new();
        let mut skipped: Vec<(i64, i64)> = Vec::new();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while seen.len() as i64 + skipped.iter().map(|(a, b)| b - a).sum::<i64>() < 5_000 {
            let e = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("events in time")
                .expect("an event");
            match &e {
                TailEvent::Records(m) => seen.extend(m.iter().map(|m| m.offset)),
                TailEvent::Skipped(s) => skipped.extend(s.iter().map(|s| (s.from, s.to))),
                TailEvent::Start(s) => assert_eq!(s, &[(0, 0)]),
                TailEvent::Error(e) => panic!("{e}"),
            }
            events.push(format!("{e:?}").chars().take(120).collect::<String>());
        }
        assert_eq!(skipped, vec![(0, 5_000 - KEEP)], "{events:?}");
        assert_eq!(seen, (5_000 - KEEP..5_000).collect::<Vec<_>>());
        assert_eq!(tails.counts().open, 1);
        drop(rx);
        // The task ends once the viewer is gone (it was waiting for new records).
        super::super::tests::append(&state, "t", 0, 1).await;
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends")
            .expect("no panic");
    }
}
