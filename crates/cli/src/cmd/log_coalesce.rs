//! Coalesces repeated warnings and errors of openraft: it logs every 500 ms per unreachable
//! peer ("error replication to target=N", "RPCError"), which buried everything else while a
//! broker was down. The first occurrence of each message passes; repeats of the same callsite
//! and message within the window are dropped and counted, and the first one after the window
//! passes with a summary line of how many were dropped. Other targets and levels pass as they
//! are (the `EnvFilter` before this layer decides those).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// How often a repeated message is let through again, with the count of those dropped.
pub const WINDOW: Duration = Duration::from_secs(30);

/// Distinct messages tracked at most; past that the table starts over (messages with
/// ever-changing text must not grow it without bound).
const MAX_KEYS: usize = 1024;

/// The layer. Add it after the `EnvFilter` and before the formatting layers.
pub struct Coalesce {
    window: Duration,
    /// Per (callsite, message): when its current window began and how many were dropped in
    /// it. A mutex, not a lock-free map: only openraft's warnings take it.
    seen: Mutex<HashMap<(Identifier, String), Window>>,
}

struct Window {
    since: Instant,
    dropped: u64,
}

impl Coalesce {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this occurrence passes; `Some(n)` with it when `n` were dropped before it.
    fn admit(&self, key: (Identifier, String), now: Instant) -> (bool, u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_KEYS && !seen.contains_key(&key) {
            seen.clear();
        }
        match seen.get_mut(&key) {
            None => {
                seen.insert(
                    key,
                    Window {
                        since: now,
                        dropped: 0,
                    },
                );
                (true, 0)
            }
            Some(w) if now.duration_since(w.since) >= self.window => {
                let dropped = w.dropped;
                w.since = now;
                w.dropped = 0;
                (true, dropped)
            }
            Some(w) => {
                w.dropped += 1;
                (false, 0)
            }
        }
    }
}

fn coalesced(target: &str, level: &Level) -> bool {
    (target == "openraft" || target.starts_with("openraft::")) && *level <= Level::WARN
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Coalesce {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if !coalesced(meta.target(), meta.level()) {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let (pass, dropped) = self.admit((meta.callsite(), message.0.clone()), Instant::now());
        if dropped > 0 {
            // Emitted outside the lock; its target is not coalesced, so no recursion.
            tracing::warn!(
                target: "weir::log",
                dropped,
                window_s = self.window.as_secs(),
                repeated = %message.0,
                "openraft repeated a message; repeats were dropped"
            );
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects the message (and `dropped`) of every event that reaches it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    impl<S: Subscriber> Layer<S> for Sink {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut f = Fields(event.metadata().target().to_string());
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
    }

    fn peer_down(target: u64) {
        tracing::error!(target: "openraft::replication", error = "refused", "error replication to target={target}");
    }

    #[test]
    fn repeats_are_dropped_counted_and_summarised_after_the_window() {
        let sink = Sink::default();
        let subscriber = tracing_subscriber::registry()
            .with(Coalesce::new(Duration::from_millis(300)))
            .with(sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                peer_down(2);
                peer_down(3); // another peer: its own first occurrence
                tracing::info!(target: "openraft::engine", "vote");
                tracing::warn!(target: "weir_broker", "not openraft");
            }
            std::thread::sleep(Duration::from_millis(350));
            peer_down(2);
        });
        let got = sink.0.lock().unwrap().clone();
        let count = |needle: &str| got.iter().filter(|l| l.contains(needle)).count();
        let replication = |peer: &str| {
            got.iter()
                .filter(|l| l.starts_with("openraft::replication") && l.contains(peer))
                .count()
        };
        assert_eq!(replication("target=2"), 2, "{got:#?}");
        assert_eq!(replication("target=3"), 1, "{got:#?}");
        assert_eq!(count("vote"), 5, "info passes: {got:#?}");
        assert_eq!(count("not openraft"), 5, "{got:#?}");
        let summaries: Vec<_> = got.iter().filter(|l| l.starts_with("weir::log")).collect();
        assert_eq!(summaries.len(), 1, "{got:#?}");
        assert!(summaries[0].contains("dropped=4"), "{summaries:?}");
        // The summary comes just before the occurrence it lets through.
        let at = got.iter().position(|l| l.starts_with("weir::log")).unwrap();
        assert!(
            got[at + 1].starts_with("openraft::replication") && got[at + 1].contains("target=2"),
            "{got:#?}"
        );
    }
}
