//! The console's writes against a real broker state: produce, config edits, offset resets.

use std::sync::Arc;

use weir_broker::config_ops::AlterTopicErrorKind;

use super::actions::{self, ConfigForm, ProduceForm};
use super::browse::{self, Budget, Filter, Request, Start};
use super::reset::{self, ResetError, ResetForm};
use super::tests::{append, commit};

async fn state(dir: &std::path::Path) -> Arc<weir_broker::state::State> {
    let state = weir_broker::testkit::state(dir, &[]);
    state
        .create_topic("orders", 3, 1, Default::default())
        .await
        .expect("topic");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produced_record_is_read_back_at_the_offset_it_got() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    append(&state, "orders", 1, 4).await;
    let p = actions::produce(
        &state,
        "orders",
        &ProduceForm {
            partition: Some(serde_json::json!(1)),
            key: Some("k-1".into()),
            value: Some("{\"a\":1}".into()),
            headers: Some("src: console\n".into()),
        },
    )
    .await
    .expect("produce");
    assert_eq!((p.partition, p.offset, p.partitioner), (1, 4, "given"));
    let b = browse::browse(
        &state,
        "orders",
        &Request {
            partition: Some(1),
            start: Start::Offset(4),
            filter: Filter::default(),
            cursor: None,
            limit: 10,
        },
        &Budget::default(),
    )
    .expect("browse");
    assert_eq!(b.messages.len(), 1);
    let m = &b.messages[0];
    assert_eq!((m.offset, m.key.as_deref()), (4, Some("k-1")));
    assert!(m.value_json);
    assert_eq!(
        m.headers,
        vec![("src".to_string(), Some("console".to_string()))]
    );

    // A keyed record without a partition goes where the Java client would put it.
    let p = actions::produce(
        &state,
        "orders",
        &ProduceForm {
            key: Some("foobar".into()),
            ..ProduceForm::default()
        },
    )
    .await
    .expect("produce");
    assert_eq!(p.partition, (-790_332_482i32 & 0x7fff_ffff) % 3);

    for (form, want) in [
        (
            ProduceForm {
                partition: Some("9".into()),
                ..ProduceForm::default()
            },
            "has no partition 9",
        ),
        (
            ProduceForm {
                partition: Some("one".into()),
                ..ProduceForm::default()
            },
            "bad partition",
        ),
    ] {
        let e = actions::produce(&state, "orders", &form)
            .await
            .expect_err("refused");
        assert!(e.is_bad_request() && e.to_string().contains(want), "{e}");
    }
    let e = actions::produce(&state, "nope", &ProduceForm::default())
        .await
        .expect_err("unknown topic");
    assert!(matches!(e, actions::ProduceError::UnknownTopic(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_edits_are_validated_like_incremental_alter_configs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    let form = |name: &str, op: &str, value: &str| ConfigForm {
        name: Some(name.into()),
        op: Some(op.into()),
        value: Some(value.into()),
        ..ConfigForm::default()
    };
    actions::alter_configs(&state, "orders", &form("retention.ms", "set", "1234"))
        .await
        .expect("set");
    let configs = state.topic("orders").expect("topic").configs();
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("1234")
    );

    let e = actions::alter_configs(&state, "orders", &form("retention.ms", "set", "soon"))
        .await
        .expect_err("invalid value");
    assert_eq!(e.kind, AlterTopicErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("INVALID_CONFIG"), "{e}");
    let e = actions::alter_configs(&state, "orders", &form("no.such.key", "set", "1"))
        .await
        .expect_err("unknown key");
    assert_eq!(e.kind, AlterTopicErrorKind::InvalidConfig, "{e}");
    let e = actions::alter_configs(&state, "orders", &form("retention.ms", "append", "1"))
        .await
        .expect_err("append on a scalar");
    assert!(e.to_string().contains("not a list"), "{e}");
    let e = actions::alter_configs(&state, "nope", &form("retention.ms", "set", "1"))
        .await
        .expect_err("unknown topic");
    assert_eq!(e.kind, AlterTopicErrorKind::UnknownTopic);
    // Nothing was changed by the refusals.
    assert_eq!(state.topic("orders").expect("topic").configs(), configs);

    actions::alter_configs(&state, "orders", &form("retention.ms", "delete", ""))
        .await
        .expect("delete");
    assert!(!state
        .topic("orders")
        .expect("topic")
        .configs()
        .contains_key("retention.ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_dry_run_changes_nothing_and_apply_commits_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    append(&state, "orders", 0, 10).await;
    append(&state, "orders", 1, 6).await;
    commit(&state, "billing", "orders", &[(0, 8), (1, 6)]).await;
    let form = |to: &str, value: &str, action: &str| ResetForm {
        to: Some(to.into()),
        value: Some(value.into()),
        action: Some(action.into()),
        ..ResetForm::default()
    };
    let plan = reset::plan(&state, "billing", &form("shift-by", "-3", "dry-run")).expect("plan");
    let moves: Vec<(i32, Option<i64>, i64, i64)> = plan
        .rows
        .iter()
        .map(|r| (r.partition, r.current, r.new, r.lag_after))
        .collect();
    assert_eq!(moves, [(0, Some(8), 5, 5), (1, Some(6), 3, 3)]);
    assert_eq!((plan.lag_before, plan.lag_after), (2, 8));
    let committed = |state: &weir_broker::state::State| {
        let mut o: Vec<(i32, i64)> = state
            .groups
            .stats()
            .into_iter()
            .find(|g| g.group_id == "billing")
            .expect("group")
            .offsets
            .into_iter()
            .map(|(tp, o)| (tp.partition, o))
            .collect();
        o.sort();
        o
    };
    assert_eq!(
        committed(&state),
        [(0, 8), (1, 6)],
        "a dry run commits nothing"
    );

    let mut plan = reset::plan(&state, "billing", &form("earliest", "", "apply")).expect("plan");
    reset::apply(&state, &mut plan).await.expect("apply");
    assert!(plan.applied);
    assert_eq!(committed(&state), [(0, 0), (1, 0)]);

    // One partition of a named topic, including one the group never committed on.
    let f = ResetForm {
        topic: Some("orders".into()),
        partition: Some("2".into()),
        ..form("latest", "", "apply")
    };
    let mut plan = reset::plan(&state, "billing", &f).expect("plan");
    assert_eq!(plan.rows.len(), 1);
    assert_eq!((plan.rows[0].current, plan.rows[0].new), (None, 0));
    reset::apply(&state, &mut plan).await.expect("apply");
    assert_eq!(committed(&state), [(0, 0), (1, 0), (2, 0)]);

    assert!(matches!(
        reset::plan(&state, "nobody", &form("latest", "", "")),
        Err(ResetError::UnknownGroup(_))
    ));
    let f = ResetForm {
        topic: Some("orders".into()),
        partition: Some("7".into()),
        ..form("latest", "", "")
    };
    assert!(matches!(
        reset::plan(&state, "billing", &f),
        Err(ResetError::UnknownPartition { .. })
    ));
}
