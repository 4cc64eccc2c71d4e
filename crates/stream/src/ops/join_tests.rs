//! The join operator's changelog, degrees, residual filter and state round trip.

use std::collections::HashMap;

use super::*;
use arrow_array::{BooleanArray, Int64Array, StringArray};
use datafusion_expr::Operator;
use datafusion_physical_expr::expressions::{col, BinaryExpr};

/// A side: `k BIGINT, v VARCHAR[, _retract]`.
fn side(prefix: &str, updating: bool) -> SchemaRef {
    let mut f = vec![
        Field::new(format!("{prefix}k"), DataType::Int64, true),
        Field::new(format!("{prefix}v"), DataType::Utf8, true),
    ];
    if updating {
        f.push(Field::new(RETRACT, DataType::Boolean, false));
    }
    Arc::new(Schema::new(f))
}

fn out(updating: bool) -> SchemaRef {
    let (l, r) = (side("l", false), side("r", false));
    let mut f: Vec<Field> = l
        .fields()
        .iter()
        .chain(r.fields().iter())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    if updating {
        f.push(Field::new(RETRACT, DataType::Boolean, false));
    }
    Arc::new(Schema::new(f))
}

fn batch(s: &SchemaRef, rows: &[(Option<i64>, &str, bool)]) -> RecordBatch {
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| Some(r.1)).collect::<StringArray>()),
    ];
    if s.fields().len() == 3 {
        cols.push(Arc::new(
            rows.iter().map(|r| Some(r.2)).collect::<BooleanArray>(),
        ));
    }
    RecordBatch::try_new(s.clone(), cols).expect("batch")
}

fn op(kind: JoinKind, filter: bool) -> JoinOp {
    let (l, r) = (side("l", true), side("r", true));
    let filter = filter.then(|| {
        // lv <> rv, over left ++ right.
        let joined = out(false);
        Arc::new(BinaryExpr::new(
            col("lv", &joined).expect("lv"),
            Operator::NotEq,
            col("rv", &joined).expect("rv"),
        )) as Arc<dyn PhysicalExpr>
    });
    JoinOp::new(
        kind,
        [
            vec![col("lk", &l).expect("lk")],
            vec![col("rk", &r).expect("rk")],
        ],
        filter,
        [&l, &r],
        out(true),
    )
    .expect("join")
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

fn l(j: &mut JoinOp, rs: &[(Option<i64>, &str, bool)]) -> Vec<String> {
    rows(j.process(0, &batch(&side("l", true), rs)).expect("left"))
}

fn r(j: &mut JoinOp, rs: &[(Option<i64>, &str, bool)]) -> Vec<String> {
    rows(j.process(1, &batch(&side("r", true), rs)).expect("right"))
}

#[test]
fn inner_join_emits_and_retracts_matches_with_multiplicity() {
    let mut j = op(JoinKind::Inner, false);
    assert!(l(&mut j, &[(Some(1), "a", false), (Some(1), "a", false)]).is_empty());
    assert_eq!(
        r(&mut j, &[(Some(1), "x", false), (Some(2), "y", false)]),
        ["1,a,1,x,false", "1,a,1,x,false"]
    );
    assert_eq!(l(&mut j, &[(Some(1), "a", true)]), ["1,a,1,x,true"]);
    assert_eq!(j.rows_held(), 3);
    assert!(
        j.process(0, &batch(&side("l", true), &[(Some(9), "z", true)]))
            .is_err(),
        "a retraction of a row never inserted"
    );
}

#[test]
fn left_join_pads_until_the_first_match_and_after_the_last() {
    let mut j = op(JoinKind::Left, false);
    assert_eq!(l(&mut j, &[(Some(1), "a", false)]), ["1,a,,,false"]);
    // The first match retracts the padded row before the joined one arrives.
    assert_eq!(
        r(&mut j, &[(Some(1), "x", false)]),
        ["1,a,,,true", "1,a,1,x,false"]
    );
    // A second match does not touch the padding.
    assert_eq!(r(&mut j, &[(Some(1), "y", false)]), ["1,a,1,y,false"]);
    assert_eq!(r(&mut j, &[(Some(1), "x", true)]), ["1,a,1,x,true"]);
    // The last one going brings the padded row back, after the joined retraction.
    assert_eq!(
        r(&mut j, &[(Some(1), "y", true)]),
        ["1,a,1,y,true", "1,a,,,false"]
    );
    // An update of the table row (retract, insert) in one batch.
    assert_eq!(
        l(&mut j, &[(Some(1), "a", true), (Some(1), "b", false)]),
        ["1,a,,,true", "1,b,,,false"]
    );
    // NULL keys match nothing, are padded on the preserved side, never kept.
    assert_eq!(l(&mut j, &[(None, "n", false)]), [",n,,,false"]);
    assert!(r(&mut j, &[(None, "n", false)]).is_empty());
    assert_eq!(j.rows_held(), 1);
}

#[test]
fn full_join_pads_both_sides_and_right_join_mirrors_left() {
    let mut j = op(JoinKind::Full, false);
    assert_eq!(r(&mut j, &[(Some(2), "x", false)]), [",,2,x,false"]);
    assert_eq!(l(&mut j, &[(Some(3), "a", false)]), ["3,a,,,false"]);
    assert_eq!(
        l(&mut j, &[(Some(2), "b", false)]),
        [",,2,x,true", "2,b,2,x,false"]
    );
    assert_eq!(
        r(&mut j, &[(Some(2), "x", true)]),
        ["2,b,2,x,true", "2,b,,,false"]
    );
    let mut j = op(JoinKind::Right, false);
    assert!(l(&mut j, &[(Some(2), "b", false)]).is_empty());
    assert_eq!(r(&mut j, &[(Some(5), "x", false)]), [",,5,x,false"]);
    assert_eq!(r(&mut j, &[(Some(2), "y", false)]), ["2,b,2,y,false"]);
    assert_eq!(
        l(&mut j, &[(Some(2), "b", true)]),
        ["2,b,2,y,true", ",,2,y,false"]
    );
}

#[test]
fn the_residual_filter_decides_matches_and_degrees() {
    let mut j = op(JoinKind::Left, true);
    assert_eq!(l(&mut j, &[(Some(1), "a", false)]), ["1,a,,,false"]);
    // Same key but lv = rv: no match, the padding stays.
    assert!(r(&mut j, &[(Some(1), "a", false)]).is_empty());
    assert_eq!(
        r(&mut j, &[(Some(1), "b", false)]),
        ["1,a,,,true", "1,a,1,b,false"]
    );
    // A new left row matching only one of the two right rows.
    assert_eq!(l(&mut j, &[(Some(1), "b", false)]), ["1,b,1,a,false"]);
}

#[test]
fn append_only_inner_join_has_no_retract_column() {
    let (ls, rs) = (side("l", false), side("r", false));
    let mut j = JoinOp::new(
        JoinKind::Inner,
        [
            vec![col("lk", &ls).expect("lk")],
            vec![col("rk", &rs).expect("rk")],
        ],
        None,
        [&ls, &rs],
        out(false),
    )
    .expect("join");
    j.process(0, &batch(&ls, &[(Some(1), "a", false)]))
        .expect("left");
    let b = j
        .process(1, &batch(&rs, &[(Some(1), "x", false)]))
        .expect("right");
    assert_eq!(rows(b), ["1,a,1,x"]);
}

#[test]
fn checkpointed_join_state_restores_exactly() {
    let mut a = op(JoinKind::Full, false);
    l(&mut a, &[(Some(1), "a", false), (Some(2), "b", false)]);
    r(&mut a, &[(Some(1), "x", false)]);
    let first = a.take_changes().expect("changes");
    assert_eq!(first.len(), 3, "two left buckets, one right");
    l(&mut a, &[(Some(2), "b", true)]);
    let second = a.take_changes().expect("changes");
    assert_eq!(
        second,
        vec![(second[0].0.clone(), None)],
        "the emptied bucket"
    );
    let mut collapsed: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    for (k, v) in first.into_iter().chain(second) {
        collapsed.insert(k, v);
    }
    let mut b = op(JoinKind::Full, false);
    for (k, v) in &collapsed {
        if let Some(v) = v {
            b.restore(k, v).expect("restore");
        }
    }
    assert_eq!(b.rows_held(), a.rows_held());
    assert_eq!(b.state_bytes(), a.state_bytes());
    // Degrees came back too: retracting the only match pads the left row in both.
    let next = [(Some(1), "x", true)];
    assert_eq!(r(&mut a, &next), r(&mut b, &next));
    assert_eq!(
        r(&mut b, &[(Some(1), "z", false)]),
        ["1,a,,,true", "1,a,1,z,false"]
    );
    // State of another layout is refused.
    let mut narrow = Bucket::default();
    let one = [ScalarValue::Int64(Some(1))];
    narrow.add(bucket::pack(&one).expect("pack"), 1, 1, 0);
    let mut bytes = Vec::new();
    narrow.encode(&mut bytes).expect("encode");
    assert!(b.restore(&[0, 1], &bytes).is_err());
    assert!(b.restore(&[7, 1], &bytes).is_err());
}

/// A semi or anti join keeping `kept`'s rows: `k, v, _retract` out.
fn semi(kind: JoinKind, filter: bool) -> JoinOp {
    let (l, r) = (side("l", true), side("r", true));
    let filter = filter.then(|| {
        let joined = out(false);
        Arc::new(BinaryExpr::new(
            col("lv", &joined).expect("lv"),
            Operator::NotEq,
            col("rv", &joined).expect("rv"),
        )) as Arc<dyn PhysicalExpr>
    });
    let kept = if kind.only() == Some(0) { &l } else { &r };
    JoinOp::new(
        kind,
        [
            vec![col("lk", &l).expect("lk")],
            vec![col("rk", &r).expect("rk")],
        ],
        filter,
        [&l, &r],
        kept.clone(),
    )
    .expect("semi join")
}

#[test]
fn semi_join_emits_a_row_while_it_has_a_match_under_retractions() {
    let mut j = semi(JoinKind::LeftSemi, false);
    // No match yet: nothing; two equal left rows count twice.
    assert!(l(&mut j, &[(Some(1), "a", false), (Some(1), "a", false)]).is_empty());
    // The first match emits each left row once, whatever the number of matches.
    assert_eq!(
        r(&mut j, &[(Some(1), "x", false)]),
        ["1,a,false", "1,a,false"]
    );
    assert!(r(&mut j, &[(Some(1), "y", false)]).is_empty());
    // A left row arriving with matches is emitted at once; retracted likewise.
    assert_eq!(l(&mut j, &[(Some(1), "b", false)]), ["1,b,false"]);
    assert_eq!(l(&mut j, &[(Some(1), "b", true)]), ["1,b,true"]);
    // One match going leaves the rows; the last one going retracts them.
    assert!(r(&mut j, &[(Some(1), "x", true)]).is_empty());
    assert_eq!(r(&mut j, &[(Some(1), "y", true)]), ["1,a,true", "1,a,true"]);
    // An update of the right row (retract, insert) in one batch: out and back in.
    r(&mut j, &[(Some(1), "x", false)]);
    assert_eq!(
        r(&mut j, &[(Some(1), "x", true), (Some(1), "z", false)]),
        ["1,a,true", "1,a,true", "1,a,false", "1,a,false"]
    );
    // NULL keys match nothing and are not kept.
    assert!(l(&mut j, &[(None, "n", false)]).is_empty());
    assert!(r(&mut j, &[(None, "n", false)]).is_empty());
    assert_eq!(j.rows_held(), 2);
}

#[test]
fn anti_join_emits_a_row_while_nothing_matches_it() {
    let mut j = semi(JoinKind::LeftAnti, false);
    assert_eq!(l(&mut j, &[(Some(1), "a", false)]), ["1,a,false"]);
    assert_eq!(r(&mut j, &[(Some(1), "x", false)]), ["1,a,true"]);
    assert!(r(&mut j, &[(Some(1), "y", false)]).is_empty());
    assert!(l(&mut j, &[(Some(1), "b", false)]).is_empty());
    assert!(r(&mut j, &[(Some(1), "x", true)]).is_empty());
    assert_eq!(
        r(&mut j, &[(Some(1), "y", true)]),
        ["1,a,false", "1,b,false"]
    );
    // A NULL key matches nothing, so an anti join keeps (and retracts) the row.
    assert_eq!(l(&mut j, &[(None, "n", false)]), [",n,false"]);
    assert_eq!(l(&mut j, &[(None, "n", true)]), [",n,true"]);
}

#[test]
fn right_semi_join_with_a_filter_counts_only_rows_passing_it() {
    let mut j = semi(JoinKind::RightSemi, true);
    assert!(r(&mut j, &[(Some(1), "a", false)]).is_empty());
    // lv = rv fails the filter: no match.
    assert!(l(&mut j, &[(Some(1), "a", false)]).is_empty());
    assert_eq!(l(&mut j, &[(Some(1), "b", false)]), ["1,a,false"]);
    // A right row arriving matches the one left row with another value.
    assert_eq!(r(&mut j, &[(Some(1), "b", false)]), ["1,b,false"]);
    assert_eq!(
        l(&mut j, &[(Some(1), "b", true)]),
        ["1,a,true"],
        "the left 'a' still matches right 'b'"
    );
}

#[test]
fn a_windowed_join_frees_a_window_once_the_watermark_passes_its_end() {
    use arrow_array::TimestampMicrosecondArray;
    use arrow_schema::TimeUnit;
    // Both sides `w TIMESTAMP(µs), v VARCHAR, _retract`, joined on the window bound w.
    let side = |p: &str| -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                format!("{p}w"),
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new(format!("{p}v"), DataType::Utf8, true),
            Field::new(RETRACT, DataType::Boolean, false),
        ]))
    };
    let (ls, rs) = (side("l"), side("r"));
    let out: SchemaRef = Arc::new(Schema::new(
        ls.fields()
            .iter()
            .take(2)
            .chain(rs.fields().iter())
            .map(|f| f.as_ref().clone().with_nullable(f.name() != RETRACT))
            .collect::<Vec<_>>(),
    ));
    let expiry = Some(JoinExpiry {
        columns: [0, 0],
        end_offset_us: 1_000_000,
    });
    let make = || {
        JoinOp::new(
            JoinKind::Inner,
            [
                vec![col("lw", &ls).expect("lw")],
                vec![col("rw", &rs).expect("rw")],
            ],
            None,
            [&ls, &rs],
            out.clone(),
        )
        .expect("join")
        .with_expiry(expiry)
        .expect("expiry")
    };
    let mut j = make();
    let batch = |s: &SchemaRef, rows: &[(i64, &str, bool)]| {
        RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.0))
                        .collect::<TimestampMicrosecondArray>(),
                ),
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| Some(r.2)).collect::<BooleanArray>()),
            ],
        )
        .expect("batch")
    };
    // Windows starting at 0 s and 2 s (each 1 s long), on both sides.
    j.process(0, &batch(&ls, &[(0, "a", false), (2_000_000, "b", false)]))
        .expect("left");
    let joined = j
        .process(1, &batch(&rs, &[(0, "x", false), (2_000_000, "y", false)]))
        .expect("right");
    assert_eq!(rows(joined).len(), 2);
    let checkpoint = j.take_changes().expect("checkpoint");
    assert_eq!(j.rows_held(), 4);
    // The watermark at 999 ms closes nothing; at 1 s the first window ends.
    j.on_watermark(999);
    assert_eq!(j.rows_held(), 4);
    j.on_watermark(1_000);
    assert_eq!(j.rows_held(), 2, "the first window's rows are freed");
    let freed = j.take_changes().expect("changes");
    assert_eq!(freed.len(), 2);
    assert!(
        freed.iter().all(|(_, v)| v.is_none()),
        "tombstones: {freed:?}"
    );
    // A (late) change of the closed window is dropped, not an error; the open one joins.
    assert!(j
        .process(1, &batch(&rs, &[(0, "x", true)]))
        .expect("late")
        .is_none());
    let live = j
        .process(1, &batch(&rs, &[(2_000_000, "z", false)]))
        .expect("open window");
    assert_eq!(rows(live).len(), 1);
    // State restored from the checkpoint is freed alike.
    let mut back = make();
    for (k, v) in &checkpoint {
        back.restore(k, v.as_deref().expect("value"))
            .expect("restore");
    }
    assert_eq!(back.rows_held(), 4);
    back.on_watermark(3_000);
    assert_eq!(back.rows_held(), 0);
    // Only a timestamp column bounds a window.
    assert!(op(JoinKind::Inner, false).with_expiry(expiry).is_err());
}

#[test]
fn with_a_ttl_idle_rows_expire_and_their_retractions_are_ignored() {
    // TTL 16 ms of event time, so a grain of 1 ms.
    let mut j = op(JoinKind::Inner, false).with_ttl(Some(16));
    assert!(l(&mut j, &[(Some(1), "a", false)]).is_empty());
    j.on_watermark(0); // The first watermark gives the row a deadline: 0 + 1 + 16 ms.
    assert!(l(&mut j, &[(Some(2), "b", false)]).is_empty());
    j.on_watermark(10);
    assert!(l(&mut j, &[(Some(2), "b2", false)]).is_empty()); // Written again: 10 + 1 + 16.
    j.on_watermark(16);
    assert_eq!(j.rows_held(), 3, "nothing idle for 16 ms yet");
    j.on_watermark(17);
    assert_eq!(j.rows_held(), 2, "key 1 expired; key 2 was written at 10");
    assert!(
        r(&mut j, &[(Some(1), "x", false)]).is_empty(),
        "1,a is gone"
    );
    assert_eq!(
        r(&mut j, &[(Some(2), "y", false)]),
        ["2,b,2,y,false", "2,b2,2,y,false"]
    );
    // A retraction of an expired row: ignored, not an error.
    assert!(l(&mut j, &[(Some(1), "a", true)]).is_empty());
    j.on_watermark(100);
    assert_eq!(j.rows_held(), 0);
    assert_eq!(j.state_bytes(), 0);
}

/// Nexmark q7's shape in milliseconds: bids `(price, t)` append-only on the left, windows
/// `(max price, end)` updating on the right, `l.t <= r.end AND r.end <= l.t + 10`.
fn q7_join(bounded: bool) -> JoinOp {
    let int = |n: &str| Field::new(n, DataType::Int64, true);
    let l: SchemaRef = Arc::new(Schema::new(vec![int("price"), int("t")]));
    let r: SchemaRef = Arc::new(Schema::new(vec![
        int("max"),
        int("end"),
        Field::new(RETRACT, DataType::Boolean, false),
    ]));
    let joined: SchemaRef = Arc::new(Schema::new(vec![
        int("price"),
        int("t"),
        int("max"),
        int("end"),
    ]));
    let c = |n: &str| col(n, &joined).expect("column");
    let le = |a, b| Arc::new(BinaryExpr::new(a, Operator::LtEq, b)) as Arc<dyn PhysicalExpr>;
    let plus10 = Arc::new(BinaryExpr::new(
        c("t"),
        Operator::Plus,
        datafusion_physical_expr::expressions::lit(10i64),
    ));
    let filter = Arc::new(BinaryExpr::new(
        le(c("t"), c("end")),
        Operator::And,
        le(c("end"), plus10),
    ));
    let mut out: Vec<Field> = joined.fields().iter().map(|f| f.as_ref().clone()).collect();
    out.push(Field::new(RETRACT, DataType::Boolean, false));
    let j = JoinOp::new(
        JoinKind::Inner,
        [
            vec![col("price", &l).expect("price")],
            vec![col("max", &r).expect("max")],
        ],
        Some(filter),
        [&l, &r],
        Arc::new(Schema::new(out)),
    )
    .expect("join");
    // What the planner derives: a bid bounds the window's end by `t + 10` (+1 widening),
    // a window bounds the bid's time by its end (+1); both times trail the watermark by 0.
    let tb = |column, offset_ms| crate::ops::interval_join::TimeBound { column, offset_ms };
    let bounds = JoinTimeBounds {
        time: [1, 1],
        lag_ms: [0, 0],
        upper: [vec![tb(1, 11)], vec![tb(1, 1)]],
        updating: [false, true],
    };
    j.with_bounds(bounded.then_some(bounds)).expect("bounds")
}

#[test]
fn a_time_bounded_join_frees_rows_no_later_row_can_match_and_its_output_is_unchanged() {
    let (mut bounded, mut full) = (q7_join(true), q7_join(false));
    let bid = |rows: &[(i64, i64)]| {
        let s = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Int64, true),
            Field::new("t", DataType::Int64, true),
        ]));
        let (p, t): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
        RecordBatch::try_new(
            s,
            vec![Arc::new(Int64Array::from(p)), Arc::new(Int64Array::from(t))],
        )
        .expect("bids")
    };
    let window = |rows: &[(i64, i64, bool)]| {
        let s = Arc::new(Schema::new(vec![
            Field::new("max", DataType::Int64, true),
            Field::new("end", DataType::Int64, true),
            Field::new(RETRACT, DataType::Boolean, false),
        ]));
        RecordBatch::try_new(
            s,
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| Some(r.2)).collect::<BooleanArray>()),
            ],
        )
        .expect("windows")
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let mut peak = 0;
    let mut restored: Option<JoinOp> = None;
    // 10 ms windows; per window a running maximum that changes (retract, insert) as bids
    // come; bids one per ms, prices cycling so that several bids share a price.
    for end in (10..=600).step_by(10) {
        let mut max: Option<i64> = None;
        for t in end - 10..end {
            let price = (t * 7) % 23;
            let b = bid(&[(price, t)]);
            let mut outs = vec![sorted(rows(full.process(0, &b).expect("full")))];
            for j in [&mut bounded].into_iter().chain(restored.as_mut()) {
                outs.push(sorted(rows(j.process(0, &b).expect("bounded"))));
            }
            if max.is_none_or(|m| price > m) {
                let mut changes = Vec::new();
                if let Some(m) = max {
                    changes.push((m, end, true));
                }
                changes.push((price, end, false));
                max = Some(price);
                let w = window(&changes);
                outs.push(sorted(rows(full.process(1, &w).expect("full"))));
                for j in [&mut bounded].into_iter().chain(restored.as_mut()) {
                    outs.push(sorted(rows(j.process(1, &w).expect("bounded"))));
                }
            }
            // The watermark trails event time by 3 ms (within one window: windows end
            // after their last bid).
            for j in [&mut bounded, &mut full]
                .into_iter()
                .chain(restored.as_mut())
            {
                j.on_watermark(t - 3);
            }
            let n = if restored.is_some() { 3 } else { 2 };
            let chunks: Vec<_> = outs.chunks(n).collect();
            for c in chunks {
                assert!(c.iter().all(|o| *o == c[0]), "at t {t}: {c:?}");
            }
        }
        peak = peak.max(bounded.rows_held());
        if end == 300 {
            // A checkpoint: a fresh operator restored from the collapsed changes goes on
            // alike (its deadline index rebuilt from the rows).
            let mut back = q7_join(true);
            let mut last: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
            for (k, v) in bounded.take_changes().expect("changes") {
                last.insert(k, v);
            }
            for (k, v) in last {
                if let Some(v) = v {
                    back.restore(&k, &v).expect("restore");
                }
            }
            assert_eq!(back.rows_held(), bounded.rows_held());
            back.on_watermark(end - 4);
            restored = Some(back);
        }
    }
    println!(
        "rows held: bounded peak {peak}, end {}; unbounded {}; bytes {} against {}",
        bounded.rows_held(),
        full.rows_held(),
        bounded.state_bytes(),
        full.state_bytes()
    );
    // Held: the bids of the last 10 ms plus the watermark delay, a window or two.
    assert!(peak <= 40, "peak {peak}");
    assert!(full.rows_held() > 500, "{}", full.rows_held());
    let back = restored.expect("restored");
    assert_eq!(back.rows_held(), bounded.rows_held());
    bounded.on_watermark(10_000);
    assert_eq!(bounded.rows_held(), 0);
    assert_eq!(bounded.state_bytes(), 0, "rows and index freed");
}
