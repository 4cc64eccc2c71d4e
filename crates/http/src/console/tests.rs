use std::sync::Arc;

use weir_broker::partition::Acks;
use weir_broker::state::State;
use weir_coordinator::{CommitRequest, CommittedOffset, ErrorCode, TopicPartition};

use super::data;
use super::pages;
use super::rates::Rates;

pub(crate) async fn append(state: &State, topic: &str, partition: i32, n: usize) {
    let p = state
        .topic(topic)
        .and_then(|t| t.partition(partition))
        .expect("partition");
    let mut batch = weir_storage::testkit::BatchBuilder::new(1_000)
        .records(n, 16)
        .build();
    let a = p
        .append(
            &mut batch,
            Acks::All,
            weir_broker::Durability::AcksAll,
            1_000,
        )
        .expect("append");
    if let Some(d) = a.wait.fsync {
        d.wait().await.expect("fsync");
    }
}

pub(crate) async fn commit(state: &State, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let codes = state
        .groups
        .commit(CommitRequest {
            group_id: group.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: offsets
                .iter()
                .map(|&(partition, offset)| {
                    (
                        TopicPartition {
                            topic: topic.into(),
                            partition,
                        },
                        CommittedOffset {
                            offset,
                            leader_epoch: None,
                            metadata: None,
                            commit_timestamp_ms: 0,
                        },
                    )
                })
                .collect(),
        })
        .await;
    assert!(
        codes.iter().all(|(_, c)| *c == ErrorCode::NONE),
        "{codes:?}"
    );
}

async fn fixture(dir: &std::path::Path) -> Arc<State> {
    let state = weir_broker::testkit::state(dir, &[]);
    state
        .create_topic("orders", 3, 1, Default::default())
        .await
        .expect("topic");
    state
        .create_topic(
            "audit",
            1,
            1,
            [("retention.ms".to_string(), "60000".to_string())].into(),
        )
        .await
        .expect("topic");
    append(&state, "orders", 0, 5).await;
    append(&state, "orders", 1, 2).await;
    commit(&state, "billing", "orders", &[(0, 2), (1, 2)]).await;
    commit(&state, "<b>&evil", "orders", &[(0, 5)]).await;
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_offsets_lag_and_configs_from_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = fixture(dir.path()).await;
    let rates = Rates::new(std::time::Duration::from_secs(10));

    let list = data::topic_list(&state, &rates, 1, "", &data::everything);
    let names: Vec<&str> = list.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["audit", "orders"]);
    let audit = &list.topics[0];
    assert_eq!(audit.retention_ms, "60000", "the topic's override");
    let orders = &list.topics[1];
    assert_eq!(orders.partitions, 3);
    assert_eq!(orders.retention_ms, "604800000", "the broker default");
    assert!(orders.size_bytes > 0);
    assert_eq!(
        data::topic_list(&state, &rates, 1, "ord", &data::everything)
            .topics
            .len(),
        1
    );

    let d = data::topic_detail(&state, &rates, "orders", 1, &data::everything).expect("topic");
    let p0 = &d.partitions[0];
    assert_eq!(
        (
            p0.log_start_offset,
            p0.log_end_offset,
            p0.high_watermark,
            p0.last_stable_offset
        ),
        (0, 5, 5, 5)
    );
    assert_eq!(d.partitions[2].log_end_offset, 0);
    let billing = d
        .groups
        .iter()
        .find(|g| g.group_id == "billing")
        .expect("billing");
    assert_eq!((billing.partitions, billing.lag), (2, 3));
    assert!(d
        .configs
        .iter()
        .any(|c| c.name == "retention.ms" && c.source == "DEFAULT_CONFIG"));
    assert!(data::topic_detail(&state, &rates, "nope", 1, &data::everything).is_none());

    let groups = data::group_list(&state, 1, "", &data::everything);
    let billing = groups
        .groups
        .iter()
        .find(|g| g.group_id == "billing")
        .expect("billing");
    assert_eq!(
        (billing.lag, billing.topics, billing.members),
        (Some(3), 1, 0)
    );
    assert_eq!(billing.state, "Empty");

    let g = data::group_detail(&state, "billing", &data::everything).expect("group");
    let lags: Vec<(i32, Option<i64>, Option<i64>)> = g
        .offsets
        .iter()
        .map(|o| (o.partition, o.committed, o.lag))
        .collect();
    assert_eq!(lags, [(0, Some(2), Some(3)), (1, Some(2), Some(0))]);
    assert_eq!(g.lag, 3);

    // The HTML is rendered from the same structs, escaped.
    let html = pages::topic(&d, "t");
    assert!(html.contains("<td class=\"num\">5</td>"), "{html}");
    assert!(html.contains("&lt;b&gt;&amp;evil"), "{html}");
    assert!(html.contains("/groups/%3Cb%3E%26evil"), "{html}");
    assert!(!html.contains("<b>&evil"));
    // Both of the topic page's forms post with the token in their hidden field.
    assert_eq!(
        html.matches("<input type=\"hidden\" name=\"csrf\" value=\"t\">")
            .count(),
        2,
        "{html}"
    );
    let html = pages::group(
        &data::group_detail(&state, "<b>&evil", &data::everything).expect("group"),
        "t",
    );
    assert!(html.contains("<h1>&lt;b&gt;&amp;evil</h1>"), "{html}");
    assert!(
        html.contains("action=\"/groups/%3Cb%3E%26evil/reset\""),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_come_from_counter_deltas_and_restart_with_a_recreated_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = fixture(dir.path()).await;
    let rates = Rates::new(std::time::Duration::from_secs(10));
    rates.sample(&state, 10.0);
    assert!(
        rates.topic("orders").is_empty(),
        "the first sample is a baseline"
    );
    let t = state.topic("orders").expect("topic");
    t.metrics.produced(5_000, 50);
    t.metrics.fetched(1_000, 10);
    rates.sample(&state, 10.0);
    let ring = rates.topic("orders");
    assert_eq!(ring.len(), 1);
    assert_eq!(ring[0].produced_bytes, 500.0);
    assert_eq!(ring[0].produced_records, 5.0);
    assert_eq!(ring[0].fetched_records, 1.0);
    assert_eq!(rates.broker().last().map(|r| r.produced_records), Some(5.0));
    let list = data::topic_list(&state, &rates, 1, "orders", &data::everything);
    assert_eq!(list.topics[0].produced_records_per_s, Some(5.0));
    assert_eq!(list.topics[0].sparkline, vec![500.0]);

    state.delete_topic("orders").await.expect("delete");
    rates.sample(&state, 10.0);
    assert!(rates.topic("orders").is_empty());
    state
        .create_topic("orders", 1, 1, Default::default())
        .await
        .expect("recreate");
    rates.sample(&state, 10.0);
    rates.sample(&state, 10.0);
    assert_eq!(rates.topic("orders").len(), 1);
    assert_eq!(rates.topic("orders")[0].produced_bytes, 0.0);
}

#[test]
fn topic_and_group_lists_are_paged() {
    let (p, r) = data::Page::of(2, 250);
    assert_eq!((p.page, p.pages, r.len()), (2, 3, 100));
}
