//! Both ends of a replica fetch session, without I/O: what each request carries, what the
//! leader serves and what its answer keeps.

use bytes::Bytes;
use weir_protocol::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;

use super::*;

fn topic_id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn part(index: i32, fetch_offset: i64) -> FetchPartition {
    let mut p = FetchPartition::default();
    p.partition = index;
    p.fetch_offset = fetch_offset;
    p.current_leader_epoch = 3;
    p.last_fetched_epoch = 3;
    p.log_start_offset = 0;
    p.partition_max_bytes = 1 << 20;
    p
}

/// Topic `id` with partitions `(index, fetch offset)`.
fn topic(id: u128, parts: &[(i32, i64)]) -> FetchTopic {
    let mut t = FetchTopic::default();
    t.topic_id = topic_id(id);
    t.topic = TopicName(StrBytes::from_string(format!("t{id}")));
    t.partitions = parts.iter().map(|(i, o)| part(*i, *o)).collect();
    t
}

/// What a request lists: (topic id, partition, fetch offset), sorted.
fn listed(req: &FetchRequest) -> Vec<(u128, i32, i64)> {
    let mut out: Vec<_> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_id.as_u128(), p.partition, p.fetch_offset))
        })
        .collect();
    out.sort_unstable();
    out
}

fn forgotten(req: &FetchRequest) -> Vec<(u128, i32)> {
    let mut out: Vec<_> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id.as_u128(), *p)))
        .collect();
    out.sort_unstable();
    out
}

/// An answer to `req` as `replica_fetch_from` gives it: every partition, with `hw` as every
/// high watermark and records for the partitions in `with_records`.
fn answer(req: &FetchRequest, hw: i64, with_records: &[(u128, i32)]) -> FetchResponse {
    let mut response = FetchResponse::default();
    for t in &req.topics {
        let mut topic = FetchableTopicResponse::default();
        topic.topic_id = t.topic_id;
        for p in &t.partitions {
            let mut data = PartitionData::default();
            data.partition_index = p.partition;
            data.high_watermark = hw;
            data.last_stable_offset = hw;
            data.log_start_offset = 0;
            let records = with_records.contains(&(t.topic_id.as_u128(), p.partition));
            data.records = Some(if records {
                Bytes::from_static(b"batch")
            } else {
                Bytes::new()
            });
            topic.partitions.push(data);
        }
        response.responses.push(topic);
    }
    response
}

fn answered(response: &FetchResponse) -> Vec<(u128, i32)> {
    let mut out: Vec<_> = response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_id.as_u128(), p.partition_index))
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn an_idle_round_carries_no_partitions_either_way() {
    let leader = LeaderSessions::default();
    let mut follower = FollowerSession::default();
    let all = || vec![topic(1, &[(0, 10), (1, 20)]), topic(2, &[(0, 5)])];

    // Full: every partition asked and answered, a session opened.
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, all());
    assert_eq!((req.session_id, req.session_epoch), (0, INITIAL_EPOCH));
    assert_eq!(listed(&req).len(), 3);
    let ticket = leader.begin(2, &mut req).expect("full request");
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    assert!(response.session_id > 0);
    assert_eq!(answered(&response).len(), 3);
    assert!(follower.answered(&response));

    // Nothing changed: the request lists nothing, the leader still serves all three with
    // the offsets it keeps, and answers none of them.
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, all());
    assert_eq!(
        (req.session_id, req.session_epoch),
        (response.session_id, 1)
    );
    assert!(listed(&req).is_empty());
    assert!(forgotten(&req).is_empty());
    let ticket = leader.begin(2, &mut req).expect("incremental request");
    assert_eq!(listed(&req), vec![(1, 0, 10), (1, 1, 20), (2, 0, 5)]);
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    assert!(response.responses.is_empty());
    assert!(follower.answered(&response));
}

#[test]
fn only_changed_partitions_travel() {
    let leader = LeaderSessions::default();
    let mut follower = FollowerSession::default();
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10), (1, 20), (2, 30)])]);
    let ticket = leader.begin(2, &mut req).expect("full");
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    assert!(follower.answered(&response));

    // Partition 1 advanced, partition 2 is no longer followed.
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10), (1, 25)])]);
    assert_eq!(listed(&req), vec![(1, 1, 25)]);
    assert_eq!(forgotten(&req), vec![(1, 2)]);
    let ticket = leader.begin(2, &mut req).expect("incremental");
    assert_eq!(listed(&req), vec![(1, 0, 10), (1, 1, 25)]);
    assert!(req.forgotten_topics_data.is_empty());
    // Records for partition 0; the high watermark moved for both.
    let mut response = answer(&req, 12, &[(1, 0)]);
    leader.finish(ticket, &mut response);
    assert_eq!(answered(&response), vec![(1, 0), (1, 1)]);
    assert!(follower.answered(&response));

    // Same watermarks, records for partition 1 only: only it is answered.
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10), (1, 25)])]);
    let ticket = leader.begin(2, &mut req).expect("incremental");
    let mut response = answer(&req, 12, &[(1, 1)]);
    leader.finish(ticket, &mut response);
    assert_eq!(answered(&response), vec![(1, 1)]);
    assert!(follower.answered(&response));

    // An error is always answered, and the partition is answered again once it clears.
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10), (1, 25)])]);
    let ticket = leader.begin(2, &mut req).expect("incremental");
    let mut response = answer(&req, 12, &[]);
    response.responses[0].partitions[0].error_code = ResponseError::NotLeaderOrFollower.code();
    leader.finish(ticket, &mut response);
    assert_eq!(answered(&response), vec![(1, 0)]);
    assert!(follower.answered(&response));
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10), (1, 25)])]);
    let ticket = leader.begin(2, &mut req).expect("incremental");
    let mut response = answer(&req, 12, &[]);
    leader.finish(ticket, &mut response);
    assert_eq!(answered(&response), vec![(1, 0)]);
}

#[test]
fn a_new_partition_joins_the_session_and_is_answered() {
    let leader = LeaderSessions::default();
    let mut follower = FollowerSession::default();
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10)])]);
    let ticket = leader.begin(2, &mut req).expect("full");
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    follower.answered(&response);

    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, vec![topic(1, &[(0, 10)]), topic(2, &[(0, 0)])]);
    assert_eq!(listed(&req), vec![(2, 0, 0)]);
    let ticket = leader.begin(2, &mut req).expect("incremental");
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    assert_eq!(answered(&response), vec![(2, 0)]);
}

#[test]
fn session_errors_send_the_follower_back_to_a_full_request() {
    let leader = LeaderSessions::default();
    let mut follower = FollowerSession::default();
    let all = || vec![topic(1, &[(0, 10)])];
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, all());
    let ticket = leader.begin(2, &mut req).expect("full");
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    follower.answered(&response);
    let id = response.session_id;

    // An epoch out of step (a request the leader never saw answered).
    let mut stale = FetchRequest::default();
    stale.session_id = id;
    stale.session_epoch = 5;
    assert_eq!(
        leader.begin(2, &mut stale),
        Err(ResponseError::InvalidFetchSessionEpoch)
    );
    // Another follower cannot use this follower's session.
    let mut other = FetchRequest::default();
    other.session_id = id;
    other.session_epoch = 1;
    assert_eq!(
        leader.begin(3, &mut other),
        Err(ResponseError::FetchSessionIdNotFound)
    );

    // The follower learns of the error from the whole answer and starts over in full.
    let mut refused = FetchResponse::default();
    refused.error_code = ResponseError::FetchSessionIdNotFound.code();
    assert!(!follower.answered(&refused));
    let mut req = FetchRequest::default();
    follower.request_topics(&mut req, all());
    assert_eq!((req.session_id, req.session_epoch), (0, INITIAL_EPOCH));
    assert_eq!(listed(&req), vec![(1, 0, 10)]);

    // Its new session replaces the old one.
    let ticket = leader.begin(2, &mut req).expect("full");
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    assert_ne!(response.session_id, id);
    let mut old = FetchRequest::default();
    old.session_id = id;
    old.session_epoch = 1;
    assert_eq!(
        leader.begin(2, &mut old),
        Err(ResponseError::FetchSessionIdNotFound)
    );
}

#[test]
fn a_leader_without_sessions_gets_full_requests_and_a_sessionless_request_stays_whole() {
    let mut follower = FollowerSession::default();
    let all = || vec![topic(1, &[(0, 10), (1, 3)])];
    for _ in 0..3 {
        let mut req = FetchRequest::default();
        follower.request_topics(&mut req, all());
        assert_eq!((req.session_id, req.session_epoch), (0, INITIAL_EPOCH));
        assert_eq!(listed(&req).len(), 2);
        // A leader that keeps no sessions answers session id 0.
        assert!(follower.answered(&answer(&req, 10, &[])));
    }

    let leader = LeaderSessions::default();
    let mut req = FetchRequest::default();
    req.session_epoch = FINAL_EPOCH;
    req.topics = all();
    let ticket = leader.begin(2, &mut req).expect("sessionless");
    assert_eq!(ticket, Ticket::Sessionless);
    let mut response = answer(&req, 10, &[]);
    leader.finish(ticket, &mut response);
    assert_eq!((response.session_id, answered(&response).len()), (0, 2));
}

#[test]
fn epochs_wrap_past_the_reserved_values() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX), 1);
}
