//! Incremental replica fetch sessions (KIP-227; design §5.2): both ends, without I/O.
//!
//! A follower's first Fetch to a leader is *full* (`session_id` 0, `session_epoch` 0): it lists
//! every partition it follows there, the leader answers every one and opens a session whose id
//! the answer carries. Each later Fetch is *incremental* (that id, the next epoch): it lists
//! only the partitions whose fetch state changed since the request before (fetch offset, leader
//! epoch, last fetched epoch, log start) and names the ones it stopped following in
//! `forgotten_topics_data`; the leader fills in the rest from its copy of the session and
//! answers only the partitions with records, an error, a divergence, or watermarks that moved
//! since it last answered them. An idle round trip therefore carries no partitions at all.
//!
//! - [`LeaderSessions`] (leader): [`LeaderSessions::begin`] turns an incoming request into the
//!   full request the leader serves as before (`replica_fetch_from`, so every partition of the
//!   session is still checked and reported to its `LeaderState` each round, as Kafka's leader
//!   does, and ISR lag is measured the same way), [`LeaderSessions::finish`] trims the answer.
//!   One session per follower broker: a follower runs one fetcher per leader, and its new full
//!   Fetch replaces its old session, so the cache is bounded by the number of brokers.
//! - [`FollowerSession`] (follower): [`FollowerSession::request_topics`] picks what a round
//!   sends, [`FollowerSession::answered`] learns the session id. Any failed round trip or
//!   session error resets it to a full Fetch. A leader that keeps no sessions answers session
//!   id 0, and the follower keeps sending full requests (a rolling upgrade mixes both).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use uuid::Uuid;
use weir_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic,
};
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use weir_protocol::ResponseError;

/// `session_epoch` of a request that opens a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// `session_epoch` of a request outside any session (Kafka's FINAL_EPOCH).
pub const FINAL_EPOCH: i32 = -1;

/// What a partition's fetch state is, as a session compares it round to round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    fetch_offset: i64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    log_start_offset: i64,
    partition_max_bytes: i32,
}

impl Asked {
    fn of(p: &FetchPartition) -> Asked {
        Asked {
            fetch_offset: p.fetch_offset,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
            log_start_offset: p.log_start_offset,
            partition_max_bytes: p.partition_max_bytes,
        }
    }

    fn to_partition(self, index: i32) -> FetchPartition {
        let mut p = FetchPartition::default();
        p.partition = index;
        p.fetch_offset = self.fetch_offset;
        p.current_leader_epoch = self.current_leader_epoch;
        p.last_fetched_epoch = self.last_fetched_epoch;
        p.log_start_offset = self.log_start_offset;
        p.partition_max_bytes = self.partition_max_bytes;
        p
    }
}

/// The watermarks a leader last answered for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marks {
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

/// A partition of a leader's session.
#[derive(Debug, Clone)]
struct Cached {
    topic: TopicName,
    asked: Asked,
    /// None until the partition was answered once in this session.
    answered: Option<Marks>,
}

/// Partitions by (topic id, index): Weir's followers name topics by id (Fetch v13+).
type Key = (Uuid, i32);

#[derive(Debug)]
struct Session {
    id: i32,
    /// The epoch the next request must carry.
    next_epoch: i32,
    parts: BTreeMap<Key, Cached>,
}

#[derive(Debug, Default)]
struct Sessions {
    last_id: i32,
    by_follower: HashMap<i32, Session>,
}

/// The leader's replica fetch sessions, one per follower broker.
#[derive(Debug, Default)]
pub struct LeaderSessions(Mutex<Sessions>);

/// How [`LeaderSessions::finish`] trims an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// A request outside sessions: answered whole, no session id.
    Sessionless,
    /// Session `id`: answered whole (`full`, the request that opened it) or only the
    /// partitions with something new.
    Session { follower: i32, id: i32, full: bool },
}

impl LeaderSessions {
    /// Resolves `req` (from `follower`) against its session and rewrites its topics into the
    /// full list to serve. `Err` is the session error code the whole answer carries
    /// (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH); the follower then opens
    /// a new session.
    pub fn begin(&self, follower: i32, req: &mut FetchRequest) -> Result<Ticket, ResponseError> {
        let mut sessions = self.lock();
        if req.session_epoch == FINAL_EPOCH {
            if req.session_id != 0 {
                sessions.remove_if(follower, req.session_id);
            }
            return Ok(Ticket::Sessionless);
        }
        if req.session_epoch == INITIAL_EPOCH {
            sessions.last_id = sessions
                .last_id
                .checked_add(1)
                .filter(|i| *i > 0)
                .unwrap_or(1);
            let id = sessions.last_id;
            let mut parts = BTreeMap::new();
            for t in &req.topics {
                for p in &t.partitions {
                    parts.insert(
                        (t.topic_id, p.partition),
                        Cached {
                            topic: t.topic.clone(),
                            asked: Asked::of(p),
                            answered: None,
                        },
                    );
                }
            }
            sessions.by_follower.insert(
                follower,
                Session {
                    id,
                    next_epoch: 1,
                    parts,
                },
            );
            return Ok(Ticket::Session {
                follower,
                id,
                full: true,
            });
        }
        let Some(session) = sessions
            .by_follower
            .get_mut(&follower)
            .filter(|s| s.id == req.session_id)
        else {
            return Err(ResponseError::FetchSessionIdNotFound);
        };
        if session.next_epoch != req.session_epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch);
        }
        session.next_epoch = next_epoch(session.next_epoch);
        for forgotten in &req.forgotten_topics_data {
            for index in &forgotten.partitions {
                session.parts.remove(&(forgotten.topic_id, *index));
            }
        }
        for t in &req.topics {
            for p in &t.partitions {
                let asked = Asked::of(p);
                session
                    .parts
                    .entry((t.topic_id, p.partition))
                    .and_modify(|c| c.asked = asked)
                    .or_insert_with(|| Cached {
                        topic: t.topic.clone(),
                        asked,
                        answered: None,
                    });
            }
        }
        req.topics = topics_of(&session.parts);
        req.forgotten_topics_data.clear();
        Ok(Ticket::Session {
            follower,
            id: session.id,
            full: false,
        })
    }

    /// Stamps the answer with the session id and, for an incremental request, keeps only
    /// the partitions with records, an error, a divergence, or watermarks other than those
    /// last answered. Records what it answered.
    pub fn finish(&self, ticket: Ticket, response: &mut FetchResponse) {
        let Ticket::Session { follower, id, full } = ticket else {
            response.session_id = 0;
            return;
        };
        response.session_id = id;
        let mut sessions = self.lock();
        let Some(session) = sessions
            .by_follower
            .get_mut(&follower)
            .filter(|s| s.id == id)
        else {
            // Replaced meanwhile by the follower's new session: answer in full.
            return;
        };
        for topic in &mut response.responses {
            let topic_id = topic.topic_id;
            topic.partitions.retain(|data| {
                let marks = Marks {
                    high_watermark: data.high_watermark,
                    last_stable_offset: data.last_stable_offset,
                    log_start_offset: data.log_start_offset,
                };
                let cached = session.parts.get_mut(&(topic_id, data.partition_index));
                let previous = cached.as_ref().and_then(|c| c.answered);
                if let Some(c) = cached {
                    c.answered = (data.error_code == 0).then_some(marks);
                }
                full || data.error_code != 0
                    || data.records.as_ref().is_some_and(|r| !r.is_empty())
                    || data.diverging_epoch.epoch >= 0
                    || data.diverging_epoch.end_offset >= 0
                    || previous != Some(marks)
            });
        }
        response.responses.retain(|t| !t.partitions.is_empty());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sessions {
    fn remove_if(&mut self, follower: i32, id: i32) {
        if self.by_follower.get(&follower).is_some_and(|s| s.id == id) {
            self.by_follower.remove(&follower);
        }
    }
}

/// The epoch after `epoch`; wraps to 1 (0 and -1 are reserved), as Kafka's.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

fn topics_of(parts: &BTreeMap<Key, Cached>) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((topic_id, index), cached) in parts {
        if topics.last().is_none_or(|t| t.topic_id != *topic_id) {
            let mut t = FetchTopic::default();
            t.topic_id = *topic_id;
            t.topic = cached.topic.clone();
            topics.push(t);
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(cached.asked.to_partition(*index));
        }
    }
    topics
}

/// The follower's side of its session with one leader.
#[derive(Debug, Default)]
pub struct FollowerSession {
    /// 0: the next request opens a session (full).
    id: i32,
    /// The epoch of the next incremental request.
    epoch: i32,
    /// What the session holds, as last sent.
    sent: HashMap<Key, (TopicName, Asked)>,
}

impl FollowerSession {
    /// Sets `req`'s session fields and topics for this round, given every partition to
    /// fetch now (`topics`, as a full request would list them).
    pub fn request_topics(&mut self, req: &mut FetchRequest, topics: Vec<FetchTopic>) {
        if self.id == 0 {
            self.sent = topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| ((t.topic_id, p.partition), (t.topic.clone(), Asked::of(p))))
                })
                .collect();
            req.session_id = 0;
            req.session_epoch = INITIAL_EPOCH;
            req.topics = topics;
            req.forgotten_topics_data.clear();
            return;
        }
        let mut wanted: HashMap<Key, (TopicName, Asked)> = HashMap::with_capacity(self.sent.len());
        let mut changed = Vec::new();
        for mut t in topics {
            let all = std::mem::take(&mut t.partitions);
            for p in all {
                let key = (t.topic_id, p.partition);
                let asked = Asked::of(&p);
                if self.sent.get(&key).map(|(_, a)| a) != Some(&asked) {
                    t.partitions.push(p);
                }
                wanted.insert(key, (t.topic.clone(), asked));
            }
            if !t.partitions.is_empty() {
                changed.push(t);
            }
        }
        let mut forgotten: BTreeMap<Uuid, ForgottenTopic> = BTreeMap::new();
        for ((topic_id, index), (topic, _)) in &self.sent {
            if !wanted.contains_key(&(*topic_id, *index)) {
                let f = forgotten.entry(*topic_id).or_insert_with(|| {
                    let mut f = ForgottenTopic::default();
                    f.topic_id = *topic_id;
                    f.topic = topic.clone();
                    f
                });
                f.partitions.push(*index);
            }
        }
        self.sent = wanted;
        req.session_id = self.id;
        req.session_epoch = self.epoch;
        req.topics = changed;
        req.forgotten_topics_data = forgotten.into_values().collect();
    }

    /// The answer to the request built last arrived. False when it carries a session error:
    /// the session is reset and the round's partitions were not answered.
    pub fn answered(&mut self, response: &FetchResponse) -> bool {
        if response.error_code != 0 {
            tracing::debug!(
                code = response.error_code,
                session = self.id,
                "replica fetch session refused; opening a new one"
            );
            self.reset();
            return false;
        }
        if self.id == 0 {
            // A leader without sessions answers 0: every request stays full.
            self.id = response.session_id;
            self.epoch = 1;
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        true
    }

    /// The round trip failed (or was never answered): the next request is full.
    pub fn reset(&mut self) {
        *self = FollowerSession::default();
    }

    /// The session id in use (0: none).
    pub fn id(&self) -> i32 {
        self.id
    }
}

#[cfg(test)]
#[path = "replica_session_tests.rs"]
mod tests;
