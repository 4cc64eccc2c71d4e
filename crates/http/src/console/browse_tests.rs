use std::time::Duration;

use weir_broker::partition::Acks;
use weir_broker::state::State;

use super::browse::{browse, Browse, Budget, Filter, Request, Start, Stopped};

/// Appends one batch of `n` records keyed `k{first+i}`, valued `{"n": first+i}`, at
/// timestamps 1000 × (first+i), every tenth with a header `trace=t{i}`.
async fn append_keyed(state: &State, partition: i32, first: usize, n: usize) {
    let p = state
        .topic("b")
        .and_then(|t| t.partition(partition))
        .expect("partition");
    let mut b = weir_storage::testkit::BatchBuilder::new(1_000 * first as i64);
    for i in first..first + n {
        let key = format!("k{i}");
        let value = format!("{{\"n\":{i}}}");
        b = b.record(
            1_000 * i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
        );
        if i % 10 == 0 {
            b = b.header(b"trace", Some(format!("t{i}").as_bytes()));
        }
    }
    let mut batch = b.build();
    let a = p
        .append(&mut batch, Acks::All, weir_broker::Durability::AcksAll, 0)
        .expect("append");
    if let Some(d) = a.wait.fsync {
        d.wait().await.expect("fsync");
    }
}

fn req(start: Start) -> Request {
    Request {
        partition: None,
        start,
        filter: Filter::default(),
        cursor: None,
        limit: 100,
    }
}

fn keys(b: &Browse) -> Vec<String> {
    b.messages.iter().filter_map(|m| m.key.clone()).collect()
}

async fn fixture(dir: &std::path::Path) -> std::sync::Arc<State> {
    let state = weir_broker::testkit::state(dir, &[]);
    state
        .create_topic("b", 2, 1, Default::default())
        .await
        .expect("topic");
    // Partition 0: k0..k49 in batches of 10; partition 1: k50..k59.
    for first in (0..50).step_by(10) {
        append_keyed(&state, 0, first, 10).await;
    }
    append_keyed(&state, 1, 50, 10).await;
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_filters_and_pretty_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = fixture(dir.path()).await;
    let budget = Budget::default();

    let all = browse(&state, "b", &req(Start::Beginning), &budget).expect("browse");
    assert_eq!((all.scanned_records, all.total_records), (60, 60));
    assert_eq!(all.stopped, Stopped::End);
    assert_eq!(all.cursor, None);
    assert_eq!(
        all.summary,
        "scanned 60 of 60 records in 2 partitions, stopped because it reached the end"
    );
    let m = &all.messages[0];
    assert_eq!(
        (m.partition, m.offset, m.key.as_deref()),
        (0, 0, Some("k0"))
    );
    assert!(m.value_json);
    assert_eq!(m.value.as_deref(), Some("{\n  \"n\": 0\n}"));
    assert_eq!(
        m.headers,
        vec![("trace".to_string(), Some("t0".to_string()))]
    );

    let mut r = req(Start::End(3));
    r.partition = Some(0);
    assert_eq!(
        keys(&browse(&state, "b", &r, &budget).expect("browse")),
        ["k47", "k48", "k49"]
    );
    let mut r = req(Start::Offset(45));
    r.partition = Some(0);
    assert_eq!(
        browse(&state, "b", &r, &budget)
            .expect("browse")
            .messages
            .len(),
        5
    );
    let r = req(Start::Timestamp(55_000));
    assert_eq!(
        keys(&browse(&state, "b", &r, &budget).expect("browse")),
        ["k55", "k56", "k57", "k58", "k59"],
        "partition 0 has nothing that late"
    );

    let mut r = req(Start::Beginning);
    r.filter.key = "k3".into();
    assert_eq!(
        keys(&browse(&state, "b", &r, &budget).expect("browse")),
        ["k3", "k30", "k31", "k32", "k33", "k34", "k35", "k36", "k37", "k38", "k39"]
    );
    let mut r = req(Start::Beginning);
    r.filter.value = "\"n\":57".into();
    assert_eq!(
        keys(&browse(&state, "b", &r, &budget).expect("browse")),
        ["k57"]
    );
    let mut r = req(Start::Beginning);
    r.filter.header = "trace=t2".into();
    assert_eq!(
        keys(&browse(&state, "b", &r, &budget).expect("browse")),
        ["k20"]
    );
    let mut r = req(Start::Beginning);
    r.filter.header = "trace".into();
    assert_eq!(
        browse(&state, "b", &r, &budget)
            .expect("browse")
            .messages
            .len(),
        6
    );

    assert!(browse(&state, "nope", &req(Start::Beginning), &budget).is_err());
    let mut r = req(Start::Beginning);
    r.partition = Some(7);
    assert!(browse(&state, "b", &r, &budget).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_stop_honestly_and_the_cursor_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = fixture(dir.path()).await;
    let small = Budget {
        max_records: 25,
        ..Budget::default()
    };
    let mut r = req(Start::Beginning);
    r.filter.key = "k5".into();
    let first = browse(&state, "b", &r, &small).expect("browse");
    assert_eq!(first.stopped, Stopped::RecordBudget);
    assert_eq!(first.scanned_records, 25);
    assert_eq!(
        first.summary,
        "scanned 25 of 60 records in 2 partitions, stopped because the budget of 25 records was spent"
    );
    assert_eq!(keys(&first), ["k5"]);
    // Partition 0 resumes after the 25th record, partition 1 where it would have started.
    assert_eq!(first.cursor.as_deref(), Some("0:25,1:0"));

    let mut all = Vec::new();
    let mut cursor = first.cursor.clone();
    let mut rounds = 0;
    while let Some(c) = cursor {
        r.cursor = Some(c);
        let next = browse(&state, "b", &r, &small).expect("continue");
        all.extend(keys(&next));
        cursor = next.cursor.clone();
        rounds += 1;
        assert!(rounds < 5, "the cursor moves forward");
    }
    assert_eq!(
        all,
        ["k50", "k51", "k52", "k53", "k54", "k55", "k56", "k57", "k58", "k59"]
    );

    let mut r = req(Start::Beginning);
    r.limit = 4;
    let b = browse(&state, "b", &r, &Budget::default()).expect("browse");
    assert_eq!(b.stopped, Stopped::MatchLimit);
    assert_eq!(b.cursor.as_deref(), Some("0:4,1:0"));

    let bytes = Budget {
        max_bytes: 1,
        ..Budget::default()
    };
    let b = browse(&state, "b", &req(Start::Beginning), &bytes).expect("browse");
    assert_eq!(b.stopped, Stopped::ByteBudget);
    assert_eq!(
        b.scanned_records, 10,
        "one batch is read before the budget is seen spent"
    );

    let time = Budget {
        max_time: Duration::ZERO,
        ..Budget::default()
    };
    let exact = Budget {
        max_records: 60,
        ..Budget::default()
    };
    let b = browse(&state, "b", &req(Start::Beginning), &exact).expect("browse");
    assert_eq!(
        (b.stopped, b.scanned_records),
        (Stopped::End, 60),
        "{}",
        b.summary
    );

    let b = browse(&state, "b", &req(Start::Beginning), &time).expect("browse");
    assert_eq!((b.stopped, b.scanned_records), (Stopped::TimeBudget, 0));
    assert_eq!(b.cursor.as_deref(), Some("0:0,1:0"));
}
