//! Coalesces repeated warnings and errors of openraft: it logs every 500 ms per unreachable
//! peer ("error replication to target=N", "RPCError"), which buried everything else while a
//! broker was down. The first occurrence of each message passes; repeats of the same callsite
//! and message within the window are dropped and counted, and the first one after the window
//! passes again. [`Summaries::emit`] (a thread in `serve`, every window) logs one line per
//! message with how many were dropped: an event cannot be logged from inside the dispatch of
//! another (tracing drops it), so the counts wait for it. Other targets and levels pass as
//! they are (the `EnvFilter` before this layer decides those).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
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
    seen: Arc<Mutex<HashMap<(Identifier, String), Window>>>,
}

/// The dropped counts, logged by [`Summaries::emit`] outside any dispatch.
#[derive(Clone)]
pub struct Summaries {
    seen: Arc<Mutex<HashMap<(Identifier, String), Window>>>,
}

impl Summaries {
    /// Logs one warning per message with repeats dropped since the last call, and resets
    /// the counts.
    pub fn emit(&self) {
        let dropped: Vec<(String, u64)> = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.iter_mut()
                .filter(|(_, w)| w.dropped > 0)
                .map(|((_, message), w)| (message.clone(), std::mem::take(&mut w.dropped)))
                .collect()
        };
        for (message, dropped) in dropped {
            tracing::warn!(
                target: "weir::log",
                dropped,
                repeated = %message,
                "openraft repeated a message; repeats were dropped"
            );
        }
    }
}

struct Window {
    since: Instant,
    dropped: u64,
}

impl Coalesce {
    pub fn new(window: Duration) -> (Self, Summaries) {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        (
            Self {
                window,
                seen: seen.clone(),
            },
            Summaries { seen },
        )
    }

    /// Whether this occurrence passes.
    fn admit(&self, key: (Identifier, String), now: Instant) -> bool {
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
                true
            }
            Some(w) if now.duration_since(w.since) >= self.window => {
                w.since = now;
                true
            }
            Some(w) => {
                w.dropped += 1;
                false
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
        self.admit((meta.callsite(), message.0), Instant::now())
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
        let (coalesce, summaries) = Coalesce::new(Duration::from_millis(300));
        let subscriber = tracing_subscriber::registry()
            .with(coalesce)
            .with(sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                peer_down(2);
                peer_down(3); // another peer: its own first occurrence
                tracing::info!(target: "openraft::engine", "vote");
                tracing::warn!(target: "weir_broker", "not openraft");
            }
            summaries.emit();
            std::thread::sleep(Duration::from_millis(350));
            peer_down(2);
            summaries.emit(); // nothing dropped since: no line
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
        // One per peer, 4 dropped each; nothing was dropped after the window.
        assert_eq!(summaries.len(), 2, "{got:#?}");
        for peer in ["target=2", "target=3"] {
            let about: Vec<_> = summaries.iter().filter(|l| l.ends_with(peer)).collect();
            assert!(
                about.len() == 1 && about[0].contains("dropped=4"),
                "{summaries:?}"
            );
        }
    }
}
