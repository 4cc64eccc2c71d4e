//! DescribeLogDirs: Weir keeps every partition in one data directory, so the answer is that
//! directory with each partition's size on disk (never lagging, never a future replica) and,
//! from v4, the file system's total and usable bytes.

use std::path::Path;

use weir_protocol::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use weir_protocol::kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;

use crate::state::State;

pub fn describe_log_dirs(state: &State, req: &DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let data_dir = &state.config.data_dir;
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = StrBytes::from_string(
        std::path::absolute(data_dir)
            .unwrap_or_else(|_| data_dir.clone())
            .display()
            .to_string(),
    );
    // Kafka answers -1 when it cannot tell; so does Weir.
    let (total, usable) = space(data_dir).unwrap_or((-1, -1));
    result.total_bytes = total;
    result.usable_bytes = usable;
    // Null topics: every partition. Otherwise the requested ones the broker hosts (Kafka
    // leaves unknown partitions out rather than erring).
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect()
    });
    let mut topics: Vec<_> = state.topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in topics {
        let partitions: Vec<_> = match &wanted {
            None => topic.all_partitions(),
            Some(wanted) => wanted
                .iter()
                .filter(|(name, _)| *name == topic.name)
                .flat_map(|(_, ps)| ps.iter().filter_map(|p| topic.partition(*p)))
                .collect(),
        };
        if partitions.is_empty() {
            continue;
        }
        let mut t = DescribeLogDirsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.name.clone()));
        t.partitions = partitions
            .iter()
            .map(|p| {
                let mut out = DescribeLogDirsPartition::default();
                out.partition_index = p.index();
                out.partition_size = i64::try_from(p.size_bytes()).unwrap_or(i64::MAX);
                out.offset_lag = 0;
                out.is_future_key = false;
                out
            })
            .collect();
        result.topics.push(t);
    }
    let mut r = DescribeLogDirsResponse::default();
    r.results = vec![result];
    r
}

/// The file system's total and available bytes (what an unprivileged writer may use).
fn space(dir: &Path) -> Option<(i64, i64)> {
    let (total, available) = crate::meta::fs_space(dir)
        .inspect_err(|e| tracing::warn!(dir = %dir.display(), error = %e, "statvfs failed"))
        .ok()?;
    let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
    Some((bytes(total), bytes(available)))
}

#[cfg(test)]
mod tests {
    use weir_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use weir_protocol::kafka_protocol::messages::{
        ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
    };
    use weir_protocol::kafka_protocol::protocol::StrBytes;
    use weir_storage::testkit::BatchBuilder;

    use super::super::testkit::{round_trip, state};
    use super::super::tests::range;

    /// Every version: the data directory, every partition with its size on disk (the bytes
    /// its segments hold), no lag, no future replica; v4 adds the disk's total and usable
    /// bytes. A request naming partitions gets only those the broker hosts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn describe_log_dirs_at_every_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        state
            .create_topic("a", 2, 1, Default::default())
            .await
            .expect("create");
        state
            .create_topic("b", 1, 1, Default::default())
            .await
            .expect("create");
        let partition = state.topic("a").and_then(|t| t.partition(1)).expect("a-1");
        let log = partition.log_for_tests();
        let mut batch = BatchBuilder::new(1).record(1, None, Some(b"hello")).build();
        let written = batch.len() as i64;
        log.append(&mut batch, 0).expect("append");

        let mut every = DescribeLogDirsRequest::default();
        every.topics = None;
        for v in range(ApiKey::DescribeLogDirs) {
            let all: DescribeLogDirsResponse =
                round_trip(&state, ApiKey::DescribeLogDirs, v, &every).await;
            assert_eq!(all.error_code, 0);
            assert_eq!(all.results.len(), 1, "v{v}");
            let result = &all.results[0];
            assert_eq!(result.error_code, 0);
            let expected_dir = std::path::absolute(dir.path()).expect("absolute");
            assert_eq!(
                result.log_dir.to_string(),
                expected_dir.display().to_string()
            );
            let sizes: Vec<(String, i32, i64)> = result
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        assert_eq!(p.offset_lag, 0);
                        assert!(!p.is_future_key);
                        (t.name.0.to_string(), p.partition_index, p.partition_size)
                    })
                })
                .collect();
            assert_eq!(
                sizes,
                vec![
                    ("a".to_owned(), 0, 0),
                    ("a".to_owned(), 1, written),
                    ("b".to_owned(), 0, 0)
                ],
                "v{v}"
            );
            if v >= 4 {
                assert!(result.total_bytes > 0, "v{v}: {}", result.total_bytes);
                assert!(result.usable_bytes >= 0 && result.usable_bytes <= result.total_bytes);
            } else {
                assert_eq!((result.total_bytes, result.usable_bytes), (-1, -1), "v{v}");
            }

            let mut some = DescribeLogDirsRequest::default();
            let mut t = DescribableLogDirTopic::default();
            t.topic = TopicName(StrBytes::from_static_str("a"));
            t.partitions = vec![1, 7];
            let mut unknown = DescribableLogDirTopic::default();
            unknown.topic = TopicName(StrBytes::from_static_str("nope"));
            unknown.partitions = vec![0];
            some.topics = Some(vec![t, unknown]);
            let r: DescribeLogDirsResponse =
                round_trip(&state, ApiKey::DescribeLogDirs, v, &some).await;
            let topics = &r.results[0].topics;
            assert_eq!(topics.len(), 1, "v{v}");
            assert_eq!(topics[0].name.0.as_str(), "a");
            assert_eq!(topics[0].partitions.len(), 1);
            assert_eq!(topics[0].partitions[0].partition_index, 1);
            assert_eq!(topics[0].partitions[0].partition_size, written);
        }
    }
}
