//! Retrying a request whose target moved: every call for a partition's leader or a
//! coordinator goes through [`Client::retrying`] (or [`Client::retrying_inner`]), which runs
//! one attempt, and on an error that a fresh lookup can fix forgets what it looked up,
//! backs off and tries again, a bounded number of times.
//!
//! A coordinator attempt asks FindCoordinator afresh each time, so there is nothing to
//! forget; a leader attempt reads the cached leader, which is dropped so the next attempt
//! asks Metadata.

use std::time::Duration;

use super::Client;
use crate::error::{codes, ClientError};

/// How often a request for a partition is retried after the leader moved (or the broker
/// asked did not know the partition yet). With [`backoff`] this waits up to 1.5 s in total.
const LEADER_RETRIES: u32 = 5;
/// How often a group (or transaction) request is retried while the coordinator is loading,
/// unavailable or has moved. With [`backoff`] this waits up to about 4.5 s in total.
const COORDINATOR_RETRIES: u32 = 9;

/// What a request waits for when it is tried again.
#[derive(Debug, Clone, Copy)]
pub(super) enum Retry<'a> {
    /// The coordinator of a group or transactional id loads, is unavailable or moved
    /// ([`coordinator_retriable`]).
    Coordinator,
    /// The leader of `topic`/`partition` moved or is being elected ([`leader_moved`]); its
    /// cached leader is forgotten before the next attempt.
    Leader { topic: &'a str, partition: i32 },
}

impl Retry<'_> {
    fn attempts(self) -> u32 {
        match self {
            Retry::Coordinator => COORDINATOR_RETRIES,
            Retry::Leader { .. } => LEADER_RETRIES,
        }
    }

    fn retriable(self, e: &ClientError) -> bool {
        match self {
            Retry::Coordinator => coordinator_retriable(e),
            Retry::Leader { .. } => leader_moved(e),
        }
    }
}

impl Client {
    /// `once` until it succeeds, fails with an error `retry` does not cover, or the retries
    /// are spent (the last error is returned).
    pub(super) async fn retrying<T>(
        &mut self,
        retry: Retry<'_>,
        once: impl AsyncFnMut(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let forget = move |c: &mut Client| c.forget(retry);
        retry_loop(self, retry, once, failure, forget).await
    }

    /// [`Client::retrying`] for a call with two levels of failure: the outer error (the
    /// request failed) ends at once, the inner one (a partition's or group's own code) is
    /// retried when `retry` covers it.
    pub(super) async fn retrying_inner<T>(
        &mut self,
        retry: Retry<'_>,
        once: impl AsyncFnMut(&mut Client) -> Result<Result<T, ClientError>, ClientError>,
    ) -> Result<Result<T, ClientError>, ClientError> {
        let forget = move |c: &mut Client| c.forget(retry);
        retry_loop(self, retry, once, inner_failure, forget).await
    }

    fn forget(&mut self, retry: Retry<'_>) {
        if let Retry::Leader { topic, partition } = retry {
            self.forget_leader(topic, partition);
        }
    }
}

/// The loop behind [`Client::retrying`], over any state so that it is tested on its own:
/// `failure` picks the error a retry is decided on out of an outcome (none: the outcome is
/// final), `forget` runs before each retry.
async fn retry_loop<S, T>(
    state: &mut S,
    retry: Retry<'_>,
    mut once: impl AsyncFnMut(&mut S) -> T,
    failure: impl Fn(&T) -> Option<&ClientError>,
    mut forget: impl FnMut(&mut S),
) -> T {
    let mut attempt = 0;
    loop {
        let outcome = once(state).await;
        let again =
            attempt < retry.attempts() && failure(&outcome).is_some_and(|e| retry.retriable(e));
        if !again {
            return outcome;
        }
        attempt += 1;
        forget(state);
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// The error of a one-level outcome.
fn failure<T>(outcome: &Result<T, ClientError>) -> Option<&ClientError> {
    outcome.as_ref().err()
}

/// The inner error of a two-level outcome (the outer one is final).
fn inner_failure<T>(outcome: &Result<Result<T, ClientError>, ClientError>) -> Option<&ClientError> {
    outcome.as_ref().ok().and_then(|inner| inner.as_ref().err())
}

/// Whether `e` means "ask the coordinator again": it is loading, unavailable, or moved.
pub(super) fn coordinator_retriable(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(
            codes::COORDINATOR_LOAD_IN_PROGRESS
                | codes::COORDINATOR_NOT_AVAILABLE
                | codes::NOT_COORDINATOR
        )
    )
}

/// Whether `e` means the partition's leader is elsewhere or being elected, which a metadata
/// refresh and a retry can fix. UNKNOWN_TOPIC_OR_PARTITION too, as Kafka's clients retry
/// it: in a cluster a broker learns of a new topic (and gets its replica) from the metadata
/// log a moment after the controller created it, so a client that asks that broker first
/// is told it does not exist (a new broker asked for a topic created the same second).
pub(super) fn leader_moved(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(
            codes::UNKNOWN_TOPIC_OR_PARTITION
                | codes::NOT_LEADER_OR_FOLLOWER
                | codes::LEADER_NOT_AVAILABLE
                | codes::FENCED_LEADER_EPOCH
                | codes::UNKNOWN_LEADER_EPOCH
        )
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * u64::from(attempt))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiKey;

    use super::*;
    use crate::error::error_name;

    fn kafka(code: i16) -> ClientError {
        ClientError::Kafka {
            api: ApiKey::Fetch,
            code,
            name: error_name(code),
            message: None,
        }
    }

    /// What the loop did: the attempts made and the forgets between them.
    #[derive(Default)]
    struct Seen {
        attempts: u32,
        forgets: u32,
    }

    /// Runs the loop over answers taken in order (the last repeats once they run out).
    async fn run(retry: Retry<'_>, answers: &[Result<u32, i16>]) -> (Result<u32, i16>, Seen) {
        let mut seen = Seen::default();
        let outcome = retry_loop(
            &mut seen,
            retry,
            async |s: &mut Seen| {
                let i = usize::try_from(s.attempts).unwrap().min(answers.len() - 1);
                s.attempts += 1;
                answers[i].map_err(kafka)
            },
            failure,
            |s: &mut Seen| s.forgets += 1,
        )
        .await;
        (outcome.map_err(|e| e.code().unwrap()), seen)
    }

    const LEADER: Retry<'static> = Retry::Leader {
        topic: "t",
        partition: 0,
    };

    #[tokio::test]
    async fn a_moved_leader_is_forgotten_and_asked_again_until_it_answers() {
        let answers = [
            Err(codes::UNKNOWN_TOPIC_OR_PARTITION),
            Err(codes::NOT_LEADER_OR_FOLLOWER),
            Err(codes::FENCED_LEADER_EPOCH),
            Ok(7),
        ];
        let (outcome, seen) = run(LEADER, &answers).await;
        assert_eq!(outcome, Ok(7));
        assert_eq!((seen.attempts, seen.forgets), (4, 3));
    }

    #[tokio::test]
    async fn an_error_no_lookup_fixes_ends_at_once() {
        let answers = [Err(codes::OFFSET_OUT_OF_RANGE), Ok(7)];
        let (outcome, seen) = run(LEADER, &answers).await;
        assert_eq!(outcome, Err(codes::OFFSET_OUT_OF_RANGE));
        assert_eq!((seen.attempts, seen.forgets), (1, 0));
        // A coordinator's codes are not a leader's, and the other way round.
        let (outcome, seen) = run(Retry::Coordinator, &[Err(codes::NOT_LEADER_OR_FOLLOWER)]).await;
        assert_eq!(outcome, Err(codes::NOT_LEADER_OR_FOLLOWER));
        assert_eq!(seen.attempts, 1);
        let (outcome, seen) = run(LEADER, &[Err(codes::NOT_COORDINATOR)]).await;
        assert_eq!(outcome, Err(codes::NOT_COORDINATOR));
        assert_eq!(seen.attempts, 1);
    }

    #[tokio::test]
    async fn the_retries_are_bounded_and_the_last_error_returned() {
        let (outcome, seen) = run(LEADER, &[Err(codes::LEADER_NOT_AVAILABLE)]).await;
        assert_eq!(outcome, Err(codes::LEADER_NOT_AVAILABLE));
        assert_eq!(seen.attempts, LEADER_RETRIES + 1);
        assert_eq!(seen.forgets, LEADER_RETRIES);
    }

    #[tokio::test]
    async fn a_loading_coordinator_is_asked_again() {
        let answers = [
            Err(codes::COORDINATOR_LOAD_IN_PROGRESS),
            Err(codes::NOT_COORDINATOR),
            Err(codes::COORDINATOR_NOT_AVAILABLE),
            Ok(3),
        ];
        let (outcome, seen) = run(Retry::Coordinator, &answers).await;
        assert_eq!(outcome, Ok(3));
        assert_eq!(seen.attempts, 4);
    }

    #[tokio::test]
    async fn an_outer_failure_is_final_and_an_inner_one_retried() {
        let mut attempts = 0u32;
        let outcome: Result<Result<u32, ClientError>, ClientError> = retry_loop(
            &mut attempts,
            Retry::Coordinator,
            async |n: &mut u32| {
                *n += 1;
                match *n {
                    1 => Ok(Err(kafka(codes::NOT_COORDINATOR))),
                    _ => Err(kafka(codes::NOT_COORDINATOR)),
                }
            },
            inner_failure,
            |_| {},
        )
        .await;
        assert_eq!(attempts, 2);
        assert!(matches!(outcome, Err(e) if e.code() == Some(codes::NOT_COORDINATOR)));
    }
}
