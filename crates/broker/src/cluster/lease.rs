//! The broker's lease (design §4.9): whether this broker may answer as a partition leader or
//! a coordinator from what it holds in memory.
//!
//! The controller fences a broker whose heartbeats stop for `broker.session.timeout.ms`
//! and moves its leaderships; the broker learns that only from the metadata log. A broker
//! that was paused (SIGSTOP, a long GC-like stall, a frozen VM) or cut off meanwhile still
//! believes it leads, and on resume would answer OffsetFetch, ListOffsets or Fetch from
//! state another broker has since moved past. The lease closes that window:
//!
//! - It is granted by a heartbeat the controller answered "not fenced", and lasts
//!   [`Lease::length`] (four fifths of the session) from the moment that heartbeat was
//!   **sent**. The controller's session for the broker runs from when it **received** the
//!   heartbeat (later), for a whole session, so on clocks of the same rate the lease ends
//!   before the controller can fence: the old owner stops before a new one is elected.
//!   The fifth left over is the margin for clock rates (monotonic clocks are slewed by at
//!   most 500 ppm) and for the controller's session deadline being taken at handling time.
//! - It holds only once the broker published an image at least as new as the one the
//!   controller's answer was decided on ([`HeartbeatAck::applied_index`]): a broker that
//!   resumes is told "not fenced" (its heartbeat unfences it) only after the fencing and the
//!   leadership moves are in the log, and must apply them before it serves again.
//! - Every decision reads the clock when it is asked ([`Lease::status`] takes `now`), never a
//!   timer: a process resumed after SIGSTOP runs its ready tasks and timers in whatever order,
//!   and a request read from a socket before any timer fired still finds the lease expired,
//!   because the send time of the last answered heartbeat is before the pause.
//!
//! Pure state: the binary feeds it the lifecycle task's answered heartbeats; handlers ask
//! [`crate::cluster::ImageCell::serving`]. A broker without a lease installed (the single
//! node, tests of handlers alone) always serves.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::ImageCell;

/// A heartbeat the controller answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// When the heartbeat was sent (before the first attempt: the earliest moment the
    /// controller can have started the session it renewed).
    pub sent_at: Instant,
    /// The controller's answer: fenced (or the registration is gone) or not.
    pub fenced: bool,
    /// The metadata index this node had applied when the answer arrived: at least the
    /// entry the controller decided it on.
    pub applied_index: u64,
}

/// Why the broker does (not) serve as leader and coordinator right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Serving until `until`.
    Held { until: Instant },
    /// No heartbeat answered yet since the start (or since registering again).
    NotGranted,
    /// The controller answered "fenced", or the registration is gone.
    Fenced,
    /// The last answered heartbeat is too old: the controller may have fenced this broker.
    Expired { since: Instant },
    /// Granted, but the image that grant was decided on is not published here yet.
    CatchingUp { needs: u64, published: u64 },
}

impl LeaseStatus {
    pub fn holds(self) -> bool {
        matches!(self, LeaseStatus::Held { .. })
    }
}

#[derive(Clone, Debug)]
pub struct Lease {
    length: Duration,
    last: Option<HeartbeatAck>,
}

impl Lease {
    /// The lease of a broker whose controller fences it after `session` without heartbeats.
    pub fn for_session(session: Duration) -> Lease {
        Lease {
            length: session.saturating_sub(session / 5),
            last: None,
        }
    }

    /// How long a granting heartbeat lasts, from its send time.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Records an answered heartbeat. One sent before the latest recorded one changes
    /// nothing (answers arrive in order today; this keeps it so if they ever overlap).
    pub fn renew(&mut self, ack: HeartbeatAck) {
        if self.last.is_none_or(|last| ack.sent_at >= last.sent_at) {
            self.last = Some(ack);
        }
    }

    /// The registration was replaced or dropped: nothing is served until a heartbeat of
    /// the new registration is answered.
    pub fn revoke(&mut self) {
        self.last = None;
    }

    /// The lease at `now`, with the image of entry `published` served here.
    pub fn status(&self, now: Instant, published: u64) -> LeaseStatus {
        let Some(ack) = self.last else {
            return LeaseStatus::NotGranted;
        };
        if ack.fenced {
            return LeaseStatus::Fenced;
        }
        let Some(until) = ack.sent_at.checked_add(self.length) else {
            return LeaseStatus::Held { until: now };
        };
        if now >= until {
            return LeaseStatus::Expired { since: until };
        }
        if published < ack.applied_index {
            return LeaseStatus::CatchingUp {
                needs: ack.applied_index,
                published,
            };
        }
        LeaseStatus::Held { until }
    }
}

impl ImageCell {
    /// Installs the lease of a broker fenced after `session` without heartbeats (cluster
    /// mode, once; later calls are ignored). From now on [`ImageCell::serving`] asks it.
    pub fn install_lease(&self, session: Duration) {
        let _ = self.lease.set(Mutex::new(Lease::for_session(session)));
    }

    /// Records a heartbeat the controller answered.
    pub fn renew_lease(&self, ack: HeartbeatAck) {
        if let Some(lease) = self.lease.get() {
            lease
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .renew(ack);
            self.lease_renewed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The registration was replaced or dropped.
    pub fn revoke_lease(&self) {
        if let Some(lease) = self.lease.get() {
            lease
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .revoke();
            self.lease_renewed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The lease now; None without one (always serving).
    pub fn lease_status(&self) -> Option<LeaseStatus> {
        let lease = self.lease.get()?;
        let published = self.index();
        let lease = lease.lock().unwrap_or_else(PoisonError::into_inner);
        Some(lease.status(Instant::now(), published))
    }

    /// Whether this broker may answer as a leader or coordinator right now.
    pub fn serving(&self) -> bool {
        self.lease_status().is_none_or(LeaseStatus::holds)
    }

    /// This broker is stopping (SIGTERM: its controlled shutdown began). Once the controller
    /// fenced it at the end of that shutdown its lease never comes back, so a request held
    /// for the lease is answered at once (as a non-leader: clients follow the new leaders)
    /// instead of after the whole wait, which held both the client and the broker's exit.
    pub fn begin_stopping(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.lease_renewed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits, `bound` at most, until [`ImageCell::serving`]; whether it does. Not at all
    /// once the broker is stopping ([`ImageCell::begin_stopping`]).
    pub async fn serving_within(&self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        let mut renewed = self.lease_renewed.subscribe();
        let mut published = self.published_rx();
        loop {
            if self.serving() {
                return true;
            }
            if self.is_stopping() {
                return false;
            }
            tokio::select! {
                _ = renewed.changed() => {}
                _ = published.changed() => {}
                () = tokio::time::sleep_until(deadline) => return self.serving(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_millis(2500);

    fn ack(sent_at: Instant, fenced: bool, applied_index: u64) -> HeartbeatAck {
        HeartbeatAck {
            sent_at,
            fenced,
            applied_index,
        }
    }

    #[test]
    fn nothing_is_served_before_the_first_answered_heartbeat() {
        let lease = Lease::for_session(SESSION);
        assert_eq!(lease.status(Instant::now(), 100), LeaseStatus::NotGranted);
    }

    #[test]
    fn the_lease_ends_a_fifth_of_a_session_before_the_controller_can_fence() {
        let t0 = Instant::now();
        let mut lease = Lease::for_session(SESSION);
        assert_eq!(lease.length(), Duration::from_millis(2000));
        lease.renew(ack(t0, false, 7));
        let until = t0 + Duration::from_millis(2000);
        assert_eq!(lease.status(t0, 7), LeaseStatus::Held { until });
        assert_eq!(
            lease.status(t0 + Duration::from_millis(1999), 7),
            LeaseStatus::Held { until }
        );
        // The controller received the heartbeat at t0 or later and fences at the earliest
        // a whole session after that: the lease is over well before.
        assert_eq!(
            lease.status(t0 + Duration::from_millis(2000), 7),
            LeaseStatus::Expired { since: until }
        );
        assert!(!lease.status(t0 + SESSION, 7).holds());
    }

    #[test]
    fn an_answer_read_after_a_pause_grants_nothing_for_the_time_before_it() {
        // The heartbeat went just before a 26 s SIGSTOP; its answer (and a request) are
        // read after the resume, before any new heartbeat: the lease counts from the send.
        let sent = Instant::now();
        let resumed = sent + Duration::from_secs(26);
        let mut lease = Lease::for_session(SESSION);
        lease.renew(ack(sent, false, 40));
        assert_eq!(
            lease.status(resumed, 40),
            LeaseStatus::Expired {
                since: sent + Duration::from_millis(2000)
            }
        );
        // The first heartbeat after the resume is answered once the controller's fencing
        // and its leadership moves (up to entry 95) are applied on this node: the lease
        // holds once the broker published that image, not before.
        let hb = resumed + Duration::from_millis(1);
        lease.renew(ack(hb, false, 95));
        let at = hb + Duration::from_millis(30);
        assert_eq!(
            lease.status(at, 40),
            LeaseStatus::CatchingUp {
                needs: 95,
                published: 40
            }
        );
        assert!(lease.status(at, 95).holds());
    }

    #[test]
    fn a_fenced_answer_stops_serving_at_once() {
        let t0 = Instant::now();
        let mut lease = Lease::for_session(SESSION);
        lease.renew(ack(t0, false, 5));
        assert!(lease.status(t0, 5).holds());
        lease.renew(ack(t0 + Duration::from_millis(500), true, 6));
        assert_eq!(
            lease.status(t0 + Duration::from_millis(501), 6),
            LeaseStatus::Fenced
        );
    }

    #[test]
    fn an_older_answer_never_replaces_a_newer_one() {
        let t0 = Instant::now();
        let mut lease = Lease::for_session(SESSION);
        lease.renew(ack(t0 + Duration::from_millis(500), true, 9));
        lease.renew(ack(t0, false, 8));
        assert_eq!(
            lease.status(t0 + Duration::from_millis(600), 9),
            LeaseStatus::Fenced
        );
    }

    #[tokio::test]
    async fn a_held_request_waits_for_the_grant_and_the_image_it_needs() {
        let cell = std::sync::Arc::new(ImageCell::default());
        assert!(cell.serving(), "no lease installed: always serving");
        cell.install_lease(SESSION);
        assert!(!cell.serving());
        assert!(!cell.serving_within(Duration::from_millis(20)).await);
        let waiter = tokio::spawn({
            let cell = cell.clone();
            async move { cell.serving_within(Duration::from_secs(30)).await }
        });
        cell.renew_lease(ack(Instant::now(), false, 3));
        assert_eq!(
            cell.lease_status()
                .map(|s| matches!(s, LeaseStatus::CatchingUp { .. })),
            Some(true)
        );
        cell.set(3, std::sync::Arc::default());
        assert!(waiter.await.expect("waiter"));
        cell.revoke_lease();
        assert_eq!(cell.lease_status(), Some(LeaseStatus::NotGranted));
    }

    #[test]
    fn registering_again_revokes_the_lease() {
        let t0 = Instant::now();
        let mut lease = Lease::for_session(SESSION);
        lease.renew(ack(t0, false, 5));
        lease.revoke();
        assert_eq!(lease.status(t0, 5), LeaseStatus::NotGranted);
    }

    #[tokio::test]
    async fn a_stopping_broker_answers_held_requests_at_once() {
        let cell = std::sync::Arc::new(ImageCell::default());
        cell.install_lease(SESSION);
        cell.set(3, std::sync::Arc::default());
        cell.renew_lease(ack(Instant::now(), false, 3));
        assert!(
            cell.serving(),
            "held while the controlled shutdown moves leaderships"
        );
        // A request already waiting when the controller fences the stopping broker.
        cell.renew_lease(ack(Instant::now(), true, 3));
        let waiter = tokio::spawn({
            let cell = cell.clone();
            async move { cell.serving_within(Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        cell.begin_stopping();
        let answered = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(!answered.expect("woken by the stop").expect("waiter"));
        // And a new one does not wait at all.
        let t = std::time::Instant::now();
        assert!(!cell.serving_within(Duration::from_secs(30)).await);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
