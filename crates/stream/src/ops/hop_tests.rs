//! The pane-sliced HOP aggregate checked against the window aggregate fed every row once
//! per window (HOP's plain form): the same view at every barrier, the same final rows.

use std::collections::BTreeMap;

use arrow_array::{Array, BooleanArray, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use datafusion_physical_expr::expressions::col;

use super::*;
use crate::graph::{AggKind, RETRACT};
use crate::ops::window::WindowAggregateOp;

const SEC: i64 = 1_000_000;
const SLIDE: i64 = 2 * SEC;
const PANES: i64 = 5;

fn input() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
        Field::new("window_start", ts.clone(), true),
        Field::new("window_end", ts, true),
    ]))
}

/// Rows (key, value, window start in µs); the end is the start plus the size.
fn batch(rows: &[(String, i64, i64)]) -> RecordBatch {
    let size = SLIDE * PANES;
    RecordBatch::try_new(
        input(),
        vec![
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.0.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.2))
                    .collect::<TimestampMicrosecondArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.2 + size))
                    .collect::<TimestampMicrosecondArray>(),
            ),
        ],
    )
    .expect("batch")
}

fn parts(emit_on_close: bool) -> (Vec<Arc<dyn PhysicalExpr>>, Vec<AggSpec>, SchemaRef) {
    let s = input();
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let group = vec![
        col("window_start", &s).expect("ws"),
        col("k", &s).expect("k"),
        col("window_end", &s).expect("we"),
    ];
    let agg = |kind, output: DataType| AggSpec {
        kind,
        arg: col("v", &s).expect("v"),
        filter: None,
        output,
    };
    let aggs = vec![
        agg(AggKind::Count, DataType::Int64),
        agg(AggKind::Sum, DataType::Int64),
        agg(AggKind::Max, DataType::Int64),
        agg(AggKind::CountDistinct, DataType::Int64),
    ];
    let mut fields = vec![
        Field::new("window_start", ts.clone(), true),
        Field::new("k", DataType::Utf8, true),
        Field::new("window_end", ts, true),
        Field::new("n", DataType::Int64, true),
        Field::new("total", DataType::Int64, true),
        Field::new("top", DataType::Int64, true),
        Field::new("distinct", DataType::Int64, true),
    ];
    if !emit_on_close {
        fields.push(Field::new(RETRACT, DataType::Boolean, false));
    }
    (group, aggs, Arc::new(Schema::new(fields)))
}

fn spec(emit_on_close: bool, hop: Option<HopSpec>) -> WindowSpec {
    WindowSpec {
        end_column: 0,
        end_offset_us: SLIDE * PANES,
        emit_on_close,
        hop,
    }
}

fn hop_spec() -> HopSpec {
    HopSpec {
        slide_us: SLIDE,
        panes: PANES as u32,
        columns: 0b101,
    }
}

fn hop_op(emit_on_close: bool) -> HopAggregateOp {
    let (group, aggs, schema) = parts(emit_on_close);
    HopAggregateOp::new(
        group,
        aggs,
        spec(emit_on_close, Some(hop_spec())),
        hop_spec(),
        schema,
    )
}

fn window_op(emit_on_close: bool) -> WindowAggregateOp {
    let (group, aggs, schema) = parts(emit_on_close);
    WindowAggregateOp::new(group, aggs, spec(emit_on_close, None), schema)
}

/// The two forms of the same rows (key, value, event time in µs): each row in its latest
/// window (panes), and once per window (HOP's plain form).
fn forms(rows: &[(String, i64, i64)]) -> (RecordBatch, RecordBatch) {
    let latest: Vec<_> = rows
        .iter()
        .map(|(k, v, t)| (k.clone(), *v, t.div_euclid(SLIDE) * SLIDE))
        .collect();
    let every: Vec<_> = latest
        .iter()
        .flat_map(|(k, v, p)| (0..PANES).map(move |j| (k.clone(), *v, p - j * SLIDE)))
        .collect();
    (batch(&latest), batch(&every))
}

fn cells(b: &RecordBatch, r: usize, n: usize) -> String {
    (0..n)
        .map(|c| arrow_cast::display::array_value_to_string(b.column(c), r).expect("display"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Applies an updating output to a view: a retraction must remove the row it names.
fn apply(view: &mut BTreeMap<String, String>, out: Option<RecordBatch>) {
    let Some(b) = out else { return };
    let retract = b
        .column(b.num_columns() - 1)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("_retract")
        .clone();
    for r in 0..b.num_rows() {
        let (key, aggs) = (cells(&b, r, 3), cells(&b, r, 7));
        if retract.value(r) {
            assert_eq!(
                view.remove(&key),
                Some(aggs),
                "retracted a row not in the view"
            );
        } else {
            assert!(
                view.insert(key, aggs).is_none(),
                "an insert over a live row"
            );
        }
    }
}

fn sorted_rows(out: Option<RecordBatch>, all: &mut Vec<String>) {
    if let Some(b) = out {
        all.extend((0..b.num_rows()).map(|r| cells(&b, r, 7)));
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as i64
    }
}

/// `op`'s checkpointed state (every change taken so far, last per key) restored into a new
/// operator.
fn restored(
    log: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    op: &mut HopAggregateOp,
    emit_on_close: bool,
) -> HopAggregateOp {
    for (k, v) in op.take_changes().expect("changes") {
        log.insert(k, v);
    }
    let mut new = hop_op(emit_on_close);
    for (k, v) in log.iter() {
        if let Some(v) = v {
            new.restore(k, v).expect("restore");
        }
    }
    new
}

/// Random rows around an advancing clock, some behind the watermark; watermarks and
/// barriers between batches; now and then the pane operator is checkpointed at a barrier
/// and replaced by one restored from its checkpoints.
fn drive(seed: u64, emit_on_close: bool) {
    let (mut panes, mut plain) = (hop_op(emit_on_close), window_op(emit_on_close));
    let (mut view_p, mut view_w) = (BTreeMap::new(), BTreeMap::new());
    let (mut final_p, mut final_w) = (Vec::new(), Vec::new());
    let mut rng = Rng(seed);
    let mut log = BTreeMap::new();
    let mut clock = 100 * SEC;
    for step in 0..300 {
        clock += rng.next(SEC);
        let rows: Vec<(String, i64, i64)> = (0..rng.next(20))
            .map(|_| {
                let key = format!("k{}", rng.next(4));
                (key, rng.next(50), clock - rng.next(6 * SEC))
            })
            .collect();
        let (latest, every) = forms(&rows);
        panes.process(&latest).expect("panes");
        plain.process(&every).expect("plain");
        if rng.next(3) == 0 {
            let w = (clock - 3 * SEC) / 1_000;
            let (a, b) = (
                panes.on_watermark(w).expect("wm"),
                plain.on_watermark(w).expect("wm"),
            );
            if emit_on_close {
                sorted_rows(a, &mut final_p);
                sorted_rows(b, &mut final_w);
            } else {
                apply(&mut view_p, a);
                apply(&mut view_w, b);
            }
        }
        if rng.next(4) == 0 {
            apply(&mut view_p, panes.flush().expect("barrier"));
            apply(&mut view_w, plain.flush().expect("barrier"));
            assert_eq!(view_p, view_w, "seed {seed}, step {step}: views differ");
            if rng.next(3) == 0 {
                panes = restored(&mut log, &mut panes, emit_on_close);
            }
        }
    }
    let end = (clock + 100 * SEC) / 1_000;
    if emit_on_close {
        sorted_rows(panes.on_watermark(end).expect("wm"), &mut final_p);
        sorted_rows(plain.on_watermark(end).expect("wm"), &mut final_w);
        final_p.sort();
        final_w.sort();
        assert!(!final_p.is_empty());
        assert_eq!(final_p, final_w, "seed {seed}: final rows differ");
    } else {
        apply(&mut view_p, panes.flush().expect("barrier"));
        apply(&mut view_w, plain.flush().expect("barrier"));
        apply(&mut view_p, panes.on_watermark(end).expect("wm"));
        apply(&mut view_w, plain.on_watermark(end).expect("wm"));
        assert!(!view_p.is_empty());
        assert_eq!(view_p, view_w, "seed {seed}: final views differ");
    }
    assert_eq!((panes.groups(), panes.state_bytes()), (0, 0), "all freed");
}

#[test]
fn updating_panes_give_the_view_of_one_row_per_window_at_every_barrier() {
    for seed in 1..=20 {
        drive(seed, false);
    }
}

#[test]
fn panes_emit_each_window_once_on_close_as_one_row_per_window_does() {
    for seed in 1..=20 {
        drive(seed, true);
    }
}

#[test]
fn a_row_lands_in_one_pane_and_a_window_merges_its_panes() {
    let mut op = hop_op(false);
    let rows = |t: &[i64]| -> Vec<(String, i64, i64)> {
        t.iter().map(|t| ("a".to_string(), *t, *t * SEC)).collect()
    };
    // Two rows in the pane [10 s, 12 s), one in [12 s, 14 s): two pane groups.
    op.process(&forms(&rows(&[10, 11, 12])).0).expect("process");
    assert_eq!(op.groups(), 2);
    let out = op.flush().expect("barrier").expect("rows");
    // Windows holding either pane: starts 2 s .. 12 s, six windows; [10 s, 20 s) and
    // [12 s, 22 s) differ (three rows and one).
    assert_eq!(out.num_rows(), 6);
    let mut view = BTreeMap::new();
    apply(&mut view, Some(out));
    assert_eq!(
        view.get("1970-01-01T00:00:10,a,1970-01-01T00:00:20")
            .map(String::as_str),
        Some("1970-01-01T00:00:10,a,1970-01-01T00:00:20,3,33,12,3")
    );
    assert_eq!(
        view.get("1970-01-01T00:00:12,a,1970-01-01T00:00:22")
            .map(String::as_str),
        Some("1970-01-01T00:00:12,a,1970-01-01T00:00:22,1,12,12,1")
    );
    // The watermark at 14 s closes the windows ending by then (starts 2 s and 4 s): no
    // change is pending, nothing leaves, no pane is freed (each is in an open window).
    assert!(op.on_watermark(14_000).expect("wm").is_none());
    assert_eq!(op.groups(), 2);
    // A row in [10 s, 12 s) now changes the three windows still open that hold it
    // (starts 6 s, 8 s, 10 s), not the two closed ones.
    op.process(&forms(&rows(&[10])).0).expect("process");
    let out = op.flush().expect("barrier").expect("rows");
    assert_eq!(
        out.num_rows(),
        6,
        "a retraction and a new row per open window"
    );
    apply(&mut view, Some(out));
    assert_eq!(view.len(), 6);
    // Past 20 s the first pane's last window has closed: freed.
    op.on_watermark(20_000).expect("wm");
    assert_eq!(op.groups(), 1);
    // A row whose every window has closed is dropped and counted.
    op.process(&forms(&rows(&[9])).0).expect("process");
    assert_eq!((op.dropped(), op.groups()), (1, 1));
}

#[test]
fn restored_panes_emit_as_the_original() {
    let mut a = hop_op(true);
    let rows: Vec<(String, i64, i64)> = (0..40)
        .map(|i| (format!("k{}", i % 3), i, i * SEC / 2))
        .collect();
    a.process(&forms(&rows).0).expect("process");
    a.on_watermark(8_000).expect("wm");
    let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for (k, v) in a.take_changes().expect("changes") {
        last.insert(k, v);
    }
    let mut b = hop_op(true);
    for (k, v) in &last {
        if let Some(v) = v {
            b.restore(k, v).expect("restore");
        }
    }
    // The watermark came back with the panes: windows that closed before are not emitted
    // again, though their later panes are still held.
    assert_eq!((b.groups(), b.state_bytes()), (a.groups(), a.state_bytes()));
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    sorted_rows(a.on_watermark(60_000).expect("a"), &mut ra);
    sorted_rows(b.on_watermark(60_000).expect("b"), &mut rb);
    assert!(!ra.is_empty());
    assert_eq!(ra, rb);
    assert!(b.restore(b"short", b"x").is_err());
}
