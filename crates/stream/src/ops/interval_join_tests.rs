//! The interval join: constant and row-dependent bounds, state freed by the watermarks,
//! restore.

use super::*;
use arrow_array::{Int64Array, StringArray};
use datafusion_physical_expr::expressions::col;

fn side(p: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(format!("{p}k"), DataType::Utf8, true),
        Field::new(format!("{p}t"), DataType::Int64, true),
    ]))
}

fn op() -> IntervalJoinOp {
    let (l, r) = (side("l"), side("r"));
    let out = Arc::new(Schema::new(
        l.fields()
            .iter()
            .chain(r.fields().iter())
            .cloned()
            .collect::<Vec<_>>(),
    ));
    // r.t BETWEEN l.t - 2 AND l.t + 5
    IntervalJoinOp::new(
        [
            vec![col("lk", &l).expect("lk")],
            vec![col("rk", &r).expect("rk")],
        ],
        [1, 1],
        SideBounds::constant([1, 1], (-2, 5)),
        None,
        [&l, &r],
        out,
    )
    .expect("op")
}

fn batch(p: &str, rows: &[(&str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        side(p),
        vec![
            Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
            Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
        ],
    )
    .expect("batch")
}

fn rows(b: Option<RecordBatch>) -> Vec<String> {
    let Some(b) = b else { return Vec::new() };
    (0..b.num_rows())
        .map(|r| {
            b.columns()
                .iter()
                .map(|c| arrow_cast::display::array_value_to_string(c, r).expect("display"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn rows_join_within_the_interval_only() {
    let mut j = op();
    j.process(0, &batch("l", &[("a", 10), ("b", 10)]))
        .expect("left");
    let out = j
        .process(
            1,
            &batch("r", &[("a", 7), ("a", 8), ("a", 15), ("a", 16), ("b", 12)]),
        )
        .expect("right");
    assert_eq!(rows(out), ["a,10,a,8", "a,10,a,15", "b,10,b,12"]);
    // And from the other side: right rows at 8, 15, 16 match a left row at 11..=13.
    let out = j.process(0, &batch("l", &[("a", 12)])).expect("left");
    assert_eq!(rows(out), ["a,12,a,15", "a,12,a,16"]);
}

#[test]
fn watermarks_free_rows_that_can_match_nothing_more_so_state_stays_bounded() {
    let mut j = op();
    let mut peak = 0;
    for t in 0..1000 {
        j.process(0, &batch("l", &[("k", t)])).expect("left");
        j.process(1, &batch("r", &[("k", t)])).expect("right");
        // Both inputs' watermarks trail the times by 3 ms.
        j.watermark(0, t - 3);
        j.watermark(1, t - 3);
        peak = peak.max(j.rows_held());
    }
    // A left row lives until the right watermark passes t + 5, a right row until the
    // left one passes t + 2: at most 9 + 6 rows, whatever the stream's length.
    assert!(peak <= 15, "peak {peak}");
    let bytes = j.state_bytes();
    j.watermark(0, 2000);
    j.watermark(1, 2000);
    assert_eq!(j.rows_held(), 0);
    assert!(j.state_bytes() < bytes);
    // A row arriving past its range joins nothing and is not kept.
    assert!(j
        .process(0, &batch("l", &[("k", 10)]))
        .expect("late")
        .is_none());
    assert_eq!(j.rows_held(), 0);
}

#[test]
fn checkpointed_rows_restore_and_join_alike() {
    let mut a = op();
    a.process(0, &batch("l", &[("a", 10), ("b", 3)]))
        .expect("left");
    let mut b = op();
    for (k, v) in a.take_changes().expect("changes") {
        b.restore(&k, &v.expect("value")).expect("restore");
    }
    assert_eq!(b.rows_held(), 2);
    let next = batch("r", &[("a", 12), ("b", 1)]);
    let (x, y) = (
        rows(a.process(1, &next).expect("a")),
        rows(b.process(1, &next).expect("b")),
    );
    assert_eq!(x, y);
    assert_eq!(x, ["a,10,a,12", "b,3,b,1"]);
    assert!(b.restore(&[5], &[]).is_err());
}

/// Nexmark q4's shape: an auction `(k, t, expires)` matches bids `(k, t)` with
/// `bid.t BETWEEN auction.t AND auction.expires`.
fn auctions_and_bids() -> IntervalJoinOp {
    let a = Arc::new(Schema::new(vec![
        Field::new("ak", DataType::Utf8, true),
        Field::new("at", DataType::Int64, true),
        Field::new("expires", DataType::Int64, true),
    ]));
    let b = side("b");
    let out = Arc::new(Schema::new(
        a.fields()
            .iter()
            .chain(b.fields().iter())
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let bound = |column| TimeBound {
        column,
        offset_ms: 0,
    };
    IntervalJoinOp::new(
        [
            vec![col("ak", &a).expect("ak")],
            vec![col("bk", &b).expect("bk")],
        ],
        [1, 1],
        [
            // An auction bounds the bid's time by its own time and its expiry.
            SideBounds {
                lower: vec![bound(1)],
                upper: vec![bound(2)],
            },
            // A bid bounds the auction's time from above by its own time only.
            SideBounds {
                lower: Vec::new(),
                upper: vec![bound(1)],
            },
        ],
        None,
        [&a, &b],
        out,
    )
    .expect("op")
}

fn auctions(rows: &[(&str, i64, Option<i64>)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ak", DataType::Utf8, true),
        Field::new("at", DataType::Int64, true),
        Field::new("expires", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
            Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
        ],
    )
    .expect("auctions")
}

#[test]
fn row_dependent_bounds_match_within_each_rows_own_range() {
    let mut j = auctions_and_bids();
    // A bid before its auction waits for it; one after its expiry never matches.
    j.process(1, &batch("b", &[("a", 5), ("a", 12), ("a", 31)]))
        .expect("bids");
    let out = j
        .process(0, &auctions(&[("a", 10, Some(30)), ("b", 0, None)]))
        .expect("auctions");
    assert_eq!(rows(out), ["a,10,30,a,12"]);
    let out = j
        .process(1, &batch("b", &[("a", 30), ("a", 9), ("b", 1)]))
        .expect("bids");
    // The auction without an expiry (NULL bound) matches nothing and is not kept.
    assert_eq!(rows(out), ["a,10,30,a,30"]);
}

#[test]
fn watermarks_free_auctions_past_their_expiry_and_bids_past_their_time() {
    let mut j = auctions_and_bids();
    let mut peak = 0;
    // An auction a second (of ms) open for 20 ms, bids on the open auctions every ms; both
    // watermarks 4 ms behind.
    for t in 0..2_000i64 {
        j.process(0, &auctions(&[(&format!("k{t}"), t, Some(t + 20))]))
            .expect("auction");
        let bids: Vec<(String, i64)> = ((t - 20).max(0)..=t)
            .map(|a| (format!("k{a}"), t))
            .collect();
        let bids: Vec<(&str, i64)> = bids.iter().map(|(k, t)| (k.as_str(), *t)).collect();
        let out = j.process(1, &batch("b", &bids)).expect("bids");
        assert_eq!(
            rows(out).len(),
            bids.len(),
            "at {t}: every bid matches its open auction"
        );
        j.watermark(0, t - 4);
        j.watermark(1, t - 4);
        peak = peak.max(j.rows_held());
    }
    // Auctions live until the bid watermark passes their expiry (about 25 of them), bids
    // until the auction watermark passes their time (about 5 ms of 21 bids each).
    assert!(peak <= 25 + 6 * 21, "peak {peak}");
    let bytes = j.state_bytes();
    j.watermark(0, 10_000);
    j.watermark(1, 10_000);
    assert_eq!(j.rows_held(), 0);
    assert!(j.state_bytes() < bytes);
    assert_eq!(j.index_bytes, 0, "the index is emptied with the rows");
}

#[test]
fn the_index_is_rebuilt_at_restore_so_restored_rows_are_freed() {
    let mut a = auctions_and_bids();
    a.process(0, &auctions(&[("x", 10, Some(30)), ("y", 10, Some(50))]))
        .expect("auctions");
    let mut b = auctions_and_bids();
    for (k, v) in a.take_changes().expect("changes") {
        b.restore(&k, &v.expect("value")).expect("restore");
    }
    assert_eq!(b.rows_held(), 2);
    b.watermark(1, 31);
    assert_eq!(b.rows_held(), 1, "x expired at 30");
    b.watermark(1, 51);
    assert_eq!(b.rows_held(), 0);
}

#[test]
fn constant_bounds_are_recognised_for_printing() {
    let b = SideBounds::constant([1, 3], (-2, 5));
    assert_eq!(SideBounds::as_constant(&b, [1, 3]), Some((-2, 5)));
    assert_eq!(SideBounds::as_constant(&b, [1, 2]), None);
    let q4 = [
        SideBounds {
            lower: vec![TimeBound {
                column: 1,
                offset_ms: 0,
            }],
            upper: vec![TimeBound {
                column: 2,
                offset_ms: 0,
            }],
        },
        SideBounds::default(),
    ];
    assert_eq!(SideBounds::as_constant(&q4, [1, 1]), None);
}
