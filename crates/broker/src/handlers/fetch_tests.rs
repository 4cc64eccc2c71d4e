//! The Fetch handler against a real state: KIP-74 sizing and long polls that wake only for
//! their own partitions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weir_protocol::kafka_protocol::messages::{fetch_request, FetchRequest, FetchResponse};
use weir_protocol::{ApiKey, ResponseError};
use weir_storage::batch::{Batches, Check};
use weir_storage::testkit::BatchBuilder;

use super::super::testkit::{answer, round_trip, send, state};
use super::super::{str, Reply};
use crate::partition::Acks;
use crate::state::State;
use crate::Durability;

const VERSION: i16 = 12;

/// Creates `name` with `partitions` partitions that take batches of up to 2 MB.
async fn topic(state: &Arc<State>, name: &str, partitions: i32) {
    let configs = BTreeMap::from([("max.message.bytes".to_string(), "2000000".to_string())]);
    state
        .create_topic(name, partitions, 1, configs)
        .await
        .expect("create");
}

/// Appends one batch of one record with a `value_bytes` value; returns the batch's size.
fn append(state: &State, name: &str, partition: i32, value_bytes: usize) -> usize {
    let mut batch = BatchBuilder::new(0).records(1, value_bytes).build();
    let len = batch.len();
    state
        .topic(name)
        .and_then(|t| t.partition(partition))
        .expect("partition")
        .append(&mut batch, Acks::Leader, Durability::None, 0)
        .expect("append");
    len
}

fn request(
    name: &str,
    offsets: &[i64],
    partition_max_bytes: i32,
    max_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    let mut t = fetch_request::FetchTopic::default();
    t.topic = weir_protocol::kafka_protocol::messages::TopicName(str(name));
    t.partitions = offsets
        .iter()
        .enumerate()
        .map(|(i, &offset)| {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = i32::try_from(i).expect("index");
            p.fetch_offset = offset;
            p.partition_max_bytes = partition_max_bytes;
            p
        })
        .collect();
    let mut req = FetchRequest::default();
    req.max_bytes = max_bytes;
    req.min_bytes = 1;
    req.max_wait_ms = max_wait_ms;
    req.topics = vec![t];
    req
}

/// Each partition's batch sizes in the answer.
fn batch_sizes(r: &FetchResponse) -> Vec<Vec<usize>> {
    r.responses[0]
        .partitions
        .iter()
        .map(|p| {
            let records = p.records.clone().unwrap_or_default();
            Batches::new(&records, Check::Full)
                .map(|b| b.expect("whole batches").bytes.len())
                .collect()
        })
        .collect()
}

/// librdkafka's `fetch.max.bytes=1000000` with three partitions of 900 KiB batches: one batch
/// per answer, never two (the second one made the answer larger than the client's receive
/// buffer, which dropped the connection and asked again, forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_exceeds_max_bytes_only_by_its_first_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    topic(&state, "big", 3).await;
    let sizes: Vec<usize> = (0..3)
        .map(|p| append(&state, "big", p, 900 * 1024))
        .collect();
    let big = sizes[0];
    let mut offsets = [0i64, 0, 0];
    for turn in 0..3 {
        let r: FetchResponse = round_trip(
            &state,
            ApiKey::Fetch,
            VERSION,
            &request("big", &offsets, 1_048_576, 1_000_000, 0),
        )
        .await;
        let mut want = vec![vec![], vec![], vec![]];
        want[turn] = vec![big];
        assert_eq!(batch_sizes(&r), want, "turn {turn}");
        for p in &r.responses[0].partitions {
            assert_eq!((p.error_code, p.high_watermark), (0, 1));
        }
        offsets[turn] = 1;
    }
}

/// After the first batch, later partitions get whole batches within what is left of
/// max_bytes; the first partition with data may exceed partition_max_bytes, the others not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_partitions_are_held_to_the_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    topic(&state, "t", 3).await;
    let big = append(&state, "t", 0, 900 * 1024);
    let small = append(&state, "t", 1, 40_000);
    append(&state, "t", 1, 40_000);
    let tiny = append(&state, "t", 2, 10);
    // 1,000,000 - 921,6xx leaves room for one 40 KB batch of partition 1, and what is left
    // after it still holds partition 2's tiny batch.
    let r: FetchResponse = round_trip(
        &state,
        ApiKey::Fetch,
        VERSION,
        &request("t", &[0, 0, 0], 1_048_576, 1_000_000, 0),
    )
    .await;
    let sizes = batch_sizes(&r);
    assert_eq!(sizes[0], vec![big]);
    assert_eq!(sizes[1], vec![small], "one of the two fits");
    assert_eq!(sizes[2], vec![tiny]);
    let total: usize = sizes.iter().flatten().sum();
    assert!(total <= 1_000_000, "{total} bytes");

    // Partition 0 has nothing at its end, so partition 1 is the first with data: its first
    // batch comes whole above partition_max_bytes, and then the limit holds.
    let r: FetchResponse = round_trip(
        &state,
        ApiKey::Fetch,
        VERSION,
        &request("t", &[1, 0, 0], 1000, 1_000_000, 0),
    )
    .await;
    assert_eq!(batch_sizes(&r), vec![vec![], vec![small], vec![tiny]]);
    // Below partition 2's batch size, partition 2 gets nothing, though partition 1's first
    // batch came whole at 800 times the same limit.
    let r: FetchResponse = round_trip(
        &state,
        ApiKey::Fetch,
        VERSION,
        &request("t", &[1, 0, 0], 50, 1_000_000, 0),
    )
    .await;
    assert_eq!(batch_sizes(&r), vec![vec![], vec![small], vec![]]);
}

/// Polls `reply`'s future on its own task; returns a handle to its response.
fn park(reply: Reply) -> tokio::task::JoinHandle<FetchResponse> {
    tokio::spawn(answer(ApiKey::Fetch, VERSION, reply))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_fetch_wakes_for_its_partition_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    topic(&state, "a", 1).await;
    topic(&state, "b", 1).await;
    let reply = send(
        &state,
        ApiKey::Fetch,
        VERSION,
        &request("a", &[0], 1 << 20, 1 << 20, 30_000),
    )
    .await;
    let parked = park(reply);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let version = |name: &str| {
        state
            .topic(name)
            .and_then(|t| t.partition(0))
            .expect("partition")
            .version()
    };
    let a_before = version("a");
    append(&state, "b", 0, 10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!parked.is_finished(), "an append elsewhere ended the poll");
    assert_eq!(version("a"), a_before);
    let len = append(&state, "a", 0, 10);
    let r = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("woken by its partition's append")
        .expect("task");
    assert_eq!(batch_sizes(&r), vec![vec![len]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_fetch_on_many_partitions_wakes_on_any() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    topic(&state, "m", 50).await;
    let reply = send(
        &state,
        ApiKey::Fetch,
        VERSION,
        &request("m", &[0; 50], 1 << 20, 1 << 20, 30_000),
    )
    .await;
    let parked = park(reply);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let len = append(&state, "m", 37, 10);
    let r = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("woken by partition 37")
        .expect("task");
    let sizes = batch_sizes(&r);
    assert_eq!(sizes[37], vec![len]);
    assert_eq!(sizes.iter().flatten().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_fetch_answers_when_its_topic_is_deleted_or_the_broker_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    topic(&state, "gone", 1).await;
    topic(&state, "kept", 1).await;
    let deleted = park(
        send(
            &state,
            ApiKey::Fetch,
            VERSION,
            &request("gone", &[0], 1 << 20, 1 << 20, 30_000),
        )
        .await,
    );
    let stopped = park(
        send(
            &state,
            ApiKey::Fetch,
            VERSION,
            &request("kept", &[0], 1 << 20, 1 << 20, 30_000),
        )
        .await,
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    state.delete_topic("gone").await.expect("delete");
    let r = tokio::time::timeout(Duration::from_secs(5), deleted)
        .await
        .expect("woken by the deletion")
        .expect("task");
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert!(!stopped.is_finished());
    state.begin_shutdown();
    let r = tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("woken by the shutdown")
        .expect("task");
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert_eq!(batch_sizes(&r), vec![Vec::<usize>::new()]);
}

/// A partition answered with an error carries unknown watermarks (-1), as Kafka's do: a
/// client must not read an errored answer's high watermark (or LSO) as the partition's end.
/// librdkafka does: a FENCED_LEADER_EPOCH answer from a restarted broker that had just lost
/// the leadership, with its watermarks 0, was taken for "end of partition" at offset 0 and a
/// read_committed reader stopped before the committed records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_errored_partition_has_unknown_watermarks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    topic(&state, "t", 1).await;
    append(&state, "t", 0, 10);
    let ask = |offset: i64, epoch: i32| {
        let mut req = request("t", &[offset], 1_048_576, 1_048_576, 0);
        req.topics[0].partitions[0].current_leader_epoch = epoch;
        req.isolation_level = 1;
        req
    };
    let ok: FetchResponse = round_trip(&state, ApiKey::Fetch, VERSION, &ask(0, -1)).await;
    let p = &ok.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.last_stable_offset),
        (0, 1, 1)
    );
    for (offset, epoch, error) in [
        (0, 7, ResponseError::UnknownLeaderEpoch),
        (5, -1, ResponseError::OffsetOutOfRange),
    ] {
        let r: FetchResponse =
            round_trip(&state, ApiKey::Fetch, VERSION, &ask(offset, epoch)).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, error.code(), "offset {offset} epoch {epoch}");
        assert_eq!(
            (p.high_watermark, p.last_stable_offset, p.log_start_offset),
            (-1, -1, -1),
            "offset {offset} epoch {epoch}"
        );
    }
}
