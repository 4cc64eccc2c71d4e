//! The accumulators of [`super::aggregate`], correct under retractions (§6): every input
//! row comes with a weight (+1 inserted, -1 retracted) and each accumulator can take a row
//! back out. `min`/`max` keep an ordered multiset of values and `count(DISTINCT)` a counted
//! set, so retracting the current extreme exposes the next and retracting the last copy of a
//! value forgets it.
//!
//! Over an input that never retracts (an append-only edge: a source, a view without
//! updating operators, any window or session aggregate's input), `min`/`max` keep their one
//! best value instead ([`Acc::Best`], RisingWave's append-only extremes): a value that is
//! not the extreme now can never become it, since nothing is ever taken out.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use arrow_schema::DataType;
use datafusion_common::ScalarValue;

use crate::state::codec::CodecError;

/// An aggregate function the updating aggregate computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggKind {
    /// Non-null values of the argument (`count(*)` counts a constant).
    Count,
    Sum,
    Avg,
    Min,
    Max,
    CountDistinct,
}

impl AggKind {
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Avg => "avg",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::CountDistinct => "count_distinct",
        }
    }

    fn tag(self) -> u8 {
        match self {
            AggKind::Count => 1,
            AggKind::Sum => 2,
            AggKind::Avg => 3,
            AggKind::Min => 4,
            AggKind::Max => 5,
            AggKind::CountDistinct => 6,
        }
    }

    fn from_tag(t: u8) -> Result<AggKind, CodecError> {
        Ok(match t {
            1 => AggKind::Count,
            2 => AggKind::Sum,
            3 => AggKind::Avg,
            4 => AggKind::Min,
            5 => AggKind::Max,
            6 => AggKind::CountDistinct,
            other => return Err(CodecError::Invalid(format!("aggregate tag {other}"))),
        })
    }

    /// Whether this aggregate can produce `output` from an argument of type `input` (what
    /// the planner checks before accepting a query).
    pub fn supports(self, input: &DataType, output: &DataType) -> bool {
        use crate::state::codec::supports;
        match self {
            AggKind::Count | AggKind::CountDistinct => {
                output == &DataType::Int64 && (self == AggKind::Count || supports(input))
            }
            AggKind::Sum => {
                matches!(
                    output,
                    DataType::Int64
                        | DataType::UInt64
                        | DataType::Float64
                        | DataType::Decimal128(..)
                ) && input.is_numeric()
            }
            AggKind::Avg => output == &DataType::Float64 && input.is_numeric(),
            AggKind::Min | AggKind::Max => supports(input) && input == output,
        }
    }
}

/// A value ordered as SQL's min/max compare it (values of one type).
#[derive(Clone, Debug, PartialEq)]
pub struct Ordered(ScalarValue);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// A running sum in the aggregate's output type; integers wrap as DataFusion's do, which
/// also makes every retraction exact.
#[derive(Clone, Debug, PartialEq)]
pub enum Total {
    Int(i64),
    UInt(u64),
    Float(f64),
    Decimal(i128, u8, i8),
}

/// Bytes an entry of a multiset costs beyond its value.
const ENTRY: usize = 48;

/// The durable tags of [`Acc::Best`] (after [`AggKind`]'s).
const BEST_MIN: u8 = 7;
const BEST_MAX: u8 = 8;

#[derive(Clone, Debug)]
pub enum Acc {
    Count(i64),
    Sum {
        total: Total,
        n: i64,
    },
    Avg {
        total: f64,
        n: i64,
    },
    Extreme {
        max: bool,
        values: BTreeMap<Ordered, i64>,
        heap: usize,
    },
    /// `min`/`max` over an append-only input: the extreme alone. A retraction is refused.
    Best {
        max: bool,
        value: Option<ScalarValue>,
    },
    Distinct {
        values: HashMap<ScalarValue, i64>,
        heap: usize,
    },
}

fn bad(m: impl Into<String>) -> String {
    m.into()
}

impl Acc {
    /// An empty accumulator of `kind` producing `output`.
    pub fn new(kind: AggKind, output: &DataType) -> Acc {
        match kind {
            AggKind::Count => Acc::Count(0),
            AggKind::Sum => Acc::Sum {
                total: match output {
                    DataType::UInt64 => Total::UInt(0),
                    DataType::Float64 => Total::Float(0.0),
                    DataType::Decimal128(p, s) => Total::Decimal(0, *p, *s),
                    _ => Total::Int(0),
                },
                n: 0,
            },
            AggKind::Avg => Acc::Avg { total: 0.0, n: 0 },
            AggKind::Min | AggKind::Max => Acc::Extreme {
                max: kind == AggKind::Max,
                values: BTreeMap::new(),
                heap: 0,
            },
            AggKind::CountDistinct => Acc::Distinct {
                values: HashMap::new(),
                heap: 0,
            },
        }
    }

    /// An empty accumulator of `kind` over an input that never retracts: `min`/`max` keep
    /// one value ([`Acc::Best`]); the others are as [`Acc::new`] makes them.
    pub fn append_only(kind: AggKind, output: &DataType) -> Acc {
        match kind {
            AggKind::Min | AggKind::Max => Acc::Best {
                max: kind == AggKind::Max,
                value: None,
            },
            _ => Acc::new(kind, output),
        }
    }

    pub fn kind(&self) -> AggKind {
        match self {
            Acc::Count(_) => AggKind::Count,
            Acc::Sum { .. } => AggKind::Sum,
            Acc::Avg { .. } => AggKind::Avg,
            Acc::Extreme { max: false, .. } | Acc::Best { max: false, .. } => AggKind::Min,
            Acc::Extreme { max: true, .. } | Acc::Best { max: true, .. } => AggKind::Max,
            Acc::Distinct { .. } => AggKind::CountDistinct,
        }
    }

    /// Heap bytes beyond the accumulator itself.
    pub fn heap(&self) -> usize {
        match self {
            Acc::Extreme { heap, .. } | Acc::Distinct { heap, .. } => *heap,
            // Beyond the inline value: a string's bytes.
            Acc::Best { value: Some(v), .. } => {
                v.size().saturating_sub(std::mem::size_of::<ScalarValue>())
            }
            _ => 0,
        }
    }

    /// Applies `value` with `weight` (+1 or -1). NULLs leave every accumulator alone.
    pub fn apply(&mut self, value: ScalarValue, weight: i64) -> Result<(), String> {
        if value.is_null() {
            return Ok(());
        }
        match self {
            Acc::Count(n) => *n += weight,
            Acc::Sum { total, n } => {
                match total {
                    Total::Int(t) => {
                        let v = match value.cast_to(&DataType::Int64) {
                            Ok(ScalarValue::Int64(Some(v))) => v,
                            other => return Err(bad(format!("sum of {other:?}"))),
                        };
                        *t = t.wrapping_add(v.wrapping_mul(weight));
                    }
                    Total::UInt(t) => {
                        let v = match value.cast_to(&DataType::UInt64) {
                            Ok(ScalarValue::UInt64(Some(v))) => v,
                            other => return Err(bad(format!("sum of {other:?}"))),
                        };
                        *t = if weight > 0 {
                            t.wrapping_add(v)
                        } else {
                            t.wrapping_sub(v)
                        };
                    }
                    Total::Float(t) => {
                        let v = match value.cast_to(&DataType::Float64) {
                            Ok(ScalarValue::Float64(Some(v))) => v,
                            other => return Err(bad(format!("sum of {other:?}"))),
                        };
                        *t += v * weight as f64;
                    }
                    Total::Decimal(t, p, s) => {
                        let v = match value.cast_to(&DataType::Decimal128(*p, *s)) {
                            Ok(ScalarValue::Decimal128(Some(v), _, _)) => v,
                            other => return Err(bad(format!("sum of {other:?}"))),
                        };
                        *t = t.wrapping_add(v.wrapping_mul(i128::from(weight)));
                    }
                }
                *n += weight;
                if *n == 0 {
                    // No value left: start again from an exact zero (no float residue).
                    *total = match total {
                        Total::Int(_) => Total::Int(0),
                        Total::UInt(_) => Total::UInt(0),
                        Total::Float(_) => Total::Float(0.0),
                        Total::Decimal(_, p, s) => Total::Decimal(0, *p, *s),
                    };
                }
            }
            Acc::Avg { total, n } => {
                let v = match value.cast_to(&DataType::Float64) {
                    Ok(ScalarValue::Float64(Some(v))) => v,
                    other => return Err(bad(format!("avg of {other:?}"))),
                };
                *total += v * weight as f64;
                *n += weight;
                if *n == 0 {
                    *total = 0.0;
                }
            }
            Acc::Extreme { values, heap, .. } => {
                let size = value.size() + ENTRY;
                counted(values, Ordered(value), weight, size, heap)?;
            }
            Acc::Best { max, value: best } => {
                if weight < 0 {
                    return Err(bad("a retraction reached the minimum or maximum of an \
                                    append-only input"));
                }
                let better = match best {
                    None => true,
                    Some(b) => {
                        let o = value.partial_cmp(b).unwrap_or(Ordering::Equal);
                        if *max {
                            o == Ordering::Greater
                        } else {
                            o == Ordering::Less
                        }
                    }
                };
                if better {
                    *best = Some(value);
                }
            }
            Acc::Distinct { values, heap } => {
                let size = value.size() + ENTRY;
                counted(values, value, weight, size, heap)?;
            }
        }
        match self {
            Acc::Count(n) | Acc::Sum { n, .. } | Acc::Avg { n, .. } if *n < 0 => {
                Err(bad("a retraction of a value the aggregate never counted"))
            }
            _ => Ok(()),
        }
    }

    /// Folds `other` (an accumulator of the same aggregate over other rows) in, as if its
    /// rows had been applied here: a hopping window's panes combined into the window.
    pub fn merge(&mut self, other: &Acc) -> Result<(), String> {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Sum { total, n }, Acc::Sum { total: t, n: m }) => {
                *total = match (&*total, t) {
                    (Total::Int(a), Total::Int(b)) => Total::Int(a.wrapping_add(*b)),
                    (Total::UInt(a), Total::UInt(b)) => Total::UInt(a.wrapping_add(*b)),
                    (Total::Float(a), Total::Float(b)) => Total::Float(a + b),
                    (Total::Decimal(a, p, s), Total::Decimal(b, ..)) => {
                        Total::Decimal(a.wrapping_add(*b), *p, *s)
                    }
                    (a, b) => return Err(bad(format!("sum of {a:?} merged with {b:?}"))),
                };
                *n += m;
            }
            (Acc::Avg { total, n }, Acc::Avg { total: t, n: m }) => {
                *total += t;
                *n += m;
            }
            (Acc::Extreme { values, heap, .. }, Acc::Extreme { values: v, .. }) => {
                for (value, w) in v {
                    let size = value.0.size() + ENTRY;
                    counted(values, value.clone(), *w, size, heap)?;
                }
            }
            (Acc::Best { max, value }, Acc::Best { value: Some(v), .. }) => {
                let better = value.as_ref().is_none_or(|b| {
                    let o = v.partial_cmp(b).unwrap_or(Ordering::Equal);
                    o == if *max {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                });
                if better {
                    *value = Some(v.clone());
                }
            }
            (Acc::Best { .. }, Acc::Best { value: None, .. }) => {}
            (Acc::Distinct { values, heap }, Acc::Distinct { values: v, .. }) => {
                for (value, w) in v {
                    let size = value.size() + ENTRY;
                    counted(values, value.clone(), *w, size, heap)?;
                }
            }
            (a, b) => {
                return Err(bad(format!(
                    "{} merged with {}",
                    a.kind().name(),
                    b.kind().name()
                )))
            }
        }
        Ok(())
    }

    /// The aggregate's current value, of type `output`.
    pub fn value(&self, output: &DataType) -> Result<ScalarValue, String> {
        let null = || ScalarValue::try_from(output).map_err(|e| e.to_string());
        Ok(match self {
            Acc::Count(n) => ScalarValue::Int64(Some(*n)),
            Acc::Sum { n: 0, .. } | Acc::Avg { n: 0, .. } => null()?,
            Acc::Sum { total, .. } => match total {
                Total::Int(t) => ScalarValue::Int64(Some(*t)),
                Total::UInt(t) => ScalarValue::UInt64(Some(*t)),
                Total::Float(t) => ScalarValue::Float64(Some(*t)),
                Total::Decimal(t, p, s) => ScalarValue::Decimal128(Some(*t), *p, *s),
            },
            Acc::Avg { total, n } => ScalarValue::Float64(Some(total / *n as f64)),
            Acc::Extreme { max, values, .. } => {
                let v = if *max {
                    values.keys().next_back()
                } else {
                    values.keys().next()
                };
                match v {
                    Some(v) => v.0.clone(),
                    None => null()?,
                }
            }
            Acc::Best { value, .. } => match value {
                Some(v) => v.clone(),
                None => null()?,
            },
            Acc::Distinct { values, .. } => {
                ScalarValue::Int64(Some(i64::try_from(values.len()).unwrap_or(i64::MAX)))
            }
        })
    }

    /// Appends the accumulator's durable form: its kind, then its fields. An append-only
    /// extreme has tags of its own ([`BEST_MIN`], [`BEST_MAX`]) and one optional value.
    pub fn encode(&self, out: &mut Vec<ScalarValue>) {
        if let Acc::Best { max, value } = self {
            out.push(ScalarValue::UInt8(Some(if *max {
                BEST_MAX
            } else {
                BEST_MIN
            })));
            out.push(value.clone().unwrap_or(ScalarValue::Null));
            return;
        }
        out.push(ScalarValue::UInt8(Some(self.kind().tag())));
        let int = |n: i64| ScalarValue::Int64(Some(n));
        match self {
            Acc::Count(n) => out.push(int(*n)),
            Acc::Sum { total, n } => {
                out.push(match total {
                    Total::Int(t) => ScalarValue::Int64(Some(*t)),
                    Total::UInt(t) => ScalarValue::UInt64(Some(*t)),
                    Total::Float(t) => ScalarValue::Float64(Some(*t)),
                    Total::Decimal(t, p, s) => ScalarValue::Decimal128(Some(*t), *p, *s),
                });
                out.push(int(*n));
            }
            Acc::Avg { total, n } => {
                out.push(ScalarValue::Float64(Some(*total)));
                out.push(int(*n));
            }
            Acc::Best { .. } => {} // Written above.
            Acc::Extreme { values, .. } => {
                out.push(int(i64::try_from(values.len()).unwrap_or(i64::MAX)));
                for (v, c) in values {
                    out.push(v.0.clone());
                    out.push(int(*c));
                }
            }
            Acc::Distinct { values, .. } => {
                out.push(int(i64::try_from(values.len()).unwrap_or(i64::MAX)));
                // Sorted, so equal state encodes to equal bytes.
                let mut sorted: Vec<_> = values.iter().collect();
                sorted.sort_by(|a, b| a.0.partial_cmp(b.0).unwrap_or(Ordering::Equal));
                for (v, c) in sorted {
                    out.push(v.clone());
                    out.push(int(*c));
                }
            }
        }
    }

    /// Reads an accumulator [`Acc::encode`] wrote from `fields`, advancing it.
    pub fn decode(fields: &mut std::slice::Iter<'_, ScalarValue>) -> Result<Acc, CodecError> {
        let short = || CodecError::Invalid("aggregate state ends early".into());
        let int = |v: Option<&ScalarValue>| match v {
            Some(ScalarValue::Int64(Some(n))) => Ok(*n),
            other => Err(CodecError::Invalid(format!(
                "aggregate state: {other:?} where a count belongs"
            ))),
        };
        let kind = match fields.next() {
            Some(ScalarValue::UInt8(Some(t @ (BEST_MIN | BEST_MAX)))) => {
                let value = fields.next().ok_or_else(short)?;
                return Ok(Acc::Best {
                    max: *t == BEST_MAX,
                    value: (!value.is_null()).then(|| value.clone()),
                });
            }
            Some(ScalarValue::UInt8(Some(t))) => AggKind::from_tag(*t)?,
            _ => return Err(short()),
        };
        Ok(match kind {
            AggKind::Count => Acc::Count(int(fields.next())?),
            AggKind::Sum => {
                let total = match fields.next().ok_or_else(short)? {
                    ScalarValue::Int64(Some(t)) => Total::Int(*t),
                    ScalarValue::UInt64(Some(t)) => Total::UInt(*t),
                    ScalarValue::Float64(Some(t)) => Total::Float(*t),
                    ScalarValue::Decimal128(Some(t), p, s) => Total::Decimal(*t, *p, *s),
                    other => return Err(CodecError::Invalid(format!("sum state {other:?}"))),
                };
                Acc::Sum {
                    total,
                    n: int(fields.next())?,
                }
            }
            AggKind::Avg => {
                let total = match fields.next() {
                    Some(ScalarValue::Float64(Some(t))) => *t,
                    other => return Err(CodecError::Invalid(format!("avg state {other:?}"))),
                };
                Acc::Avg {
                    total,
                    n: int(fields.next())?,
                }
            }
            AggKind::Min | AggKind::Max | AggKind::CountDistinct => {
                let len = int(fields.next())?;
                let mut acc = Acc::new(kind, &DataType::Null);
                for _ in 0..len {
                    let v = fields.next().ok_or_else(short)?.clone();
                    let c = int(fields.next())?;
                    let size = v.size() + ENTRY;
                    match &mut acc {
                        Acc::Extreme { values, heap, .. } => {
                            values.insert(Ordered(v), c);
                            *heap += size;
                        }
                        Acc::Distinct { values, heap } => {
                            values.insert(v, c);
                            *heap += size;
                        }
                        _ => {}
                    }
                }
                acc
            }
        })
    }
}

/// Adds `weight` to `value`'s count in a multiset, forgetting it at zero.
fn counted<K, M: Multiset<K>>(
    values: &mut M,
    value: K,
    weight: i64,
    size: usize,
    heap: &mut usize,
) -> Result<(), String> {
    let (count, inserted) = values.add(value, weight);
    if inserted {
        *heap += size;
    }
    match count {
        c if c < 0 => Err(bad("a retraction of a value the aggregate never counted")),
        0 => {
            *heap = heap.saturating_sub(size);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The two multisets' common step: returns the new count and whether the value was new; a
/// count of 0 removes the value.
trait Multiset<K> {
    fn add(&mut self, k: K, w: i64) -> (i64, bool);
}

impl<K: Ord> Multiset<K> for BTreeMap<K, i64> {
    fn add(&mut self, k: K, w: i64) -> (i64, bool) {
        use std::collections::btree_map::Entry;
        match self.entry(k) {
            Entry::Occupied(mut e) => {
                *e.get_mut() += w;
                let c = *e.get();
                if c == 0 {
                    e.remove();
                }
                (c, false)
            }
            Entry::Vacant(e) => {
                if w != 0 {
                    e.insert(w);
                }
                (w, true)
            }
        }
    }
}

impl<K: std::hash::Hash + Eq> Multiset<K> for HashMap<K, i64> {
    fn add(&mut self, k: K, w: i64) -> (i64, bool) {
        use std::collections::hash_map::Entry;
        match self.entry(k) {
            Entry::Occupied(mut e) => {
                *e.get_mut() += w;
                let c = *e.get();
                if c == 0 {
                    e.remove();
                }
                (c, false)
            }
            Entry::Vacant(e) => {
                if w != 0 {
                    e.insert(w);
                }
                (w, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(v: i64) -> ScalarValue {
        ScalarValue::Int64(Some(v))
    }

    #[test]
    fn min_and_max_expose_the_next_value_when_the_extreme_is_retracted() {
        let mut min = Acc::new(AggKind::Min, &DataType::Int64);
        let mut max = Acc::new(AggKind::Max, &DataType::Int64);
        for v in [5, 1, 9, 1] {
            min.apply(i(v), 1).expect("apply");
            max.apply(i(v), 1).expect("apply");
        }
        min.apply(ScalarValue::Int64(None), 1).expect("null");
        assert_eq!(min.value(&DataType::Int64), Ok(i(1)));
        min.apply(i(1), -1).expect("retract one copy");
        assert_eq!(min.value(&DataType::Int64), Ok(i(1)), "a second 1 remains");
        min.apply(i(1), -1).expect("retract");
        assert_eq!(min.value(&DataType::Int64), Ok(i(5)));
        max.apply(i(9), -1).expect("retract");
        assert_eq!(max.value(&DataType::Int64), Ok(i(5)));
        for v in [5, 1, 1] {
            max.apply(i(v), -1).expect("retract");
        }
        assert_eq!(max.value(&DataType::Int64), Ok(ScalarValue::Int64(None)));
        assert_eq!(max.heap(), 0, "every value freed");
        assert!(max.apply(i(3), -1).is_err(), "never counted");
    }

    #[test]
    fn append_only_extremes_keep_one_value_and_refuse_retractions() {
        let t = DataType::Utf8;
        let mut min = Acc::append_only(AggKind::Min, &t);
        let mut max = Acc::append_only(AggKind::Max, &t);
        let mut multiset = Acc::new(AggKind::Max, &t);
        assert_eq!(min.value(&t), Ok(ScalarValue::Utf8(None)), "empty: NULL");
        for v in ["m", "zz", "a", "zz", "q"] {
            for a in [&mut min, &mut max, &mut multiset] {
                a.apply(ScalarValue::Utf8(Some(v.into())), 1)
                    .expect("apply");
            }
        }
        min.apply(ScalarValue::Utf8(None), 1).expect("NULL ignored");
        assert_eq!(min.value(&t), Ok(ScalarValue::Utf8(Some("a".into()))));
        assert_eq!(max.value(&t), multiset.value(&t));
        assert_eq!((min.kind(), max.kind()), (AggKind::Min, AggKind::Max));
        assert!(
            max.heap() < multiset.heap(),
            "one value, not four: {} against {}",
            max.heap(),
            multiset.heap()
        );
        assert!(max.apply(ScalarValue::Utf8(Some("zz".into())), -1).is_err());
        // Others are the plain accumulators.
        assert_eq!(
            Acc::append_only(AggKind::Count, &DataType::Int64).kind(),
            AggKind::Count
        );
    }

    #[test]
    fn sum_avg_count_and_distinct_under_retractions_and_nulls() {
        let mut sum = Acc::new(AggKind::Sum, &DataType::Int64);
        let mut avg = Acc::new(AggKind::Avg, &DataType::Float64);
        let mut count = Acc::new(AggKind::Count, &DataType::Int64);
        let mut distinct = Acc::new(AggKind::CountDistinct, &DataType::Int64);
        for (v, w) in [
            (Some(2), 1),
            (None, 1),
            (Some(4), 1),
            (Some(2), 1),
            (Some(4), -1),
        ] {
            let v = ScalarValue::Int32(v);
            for a in [&mut sum, &mut avg, &mut count, &mut distinct] {
                a.apply(v.clone(), w).expect("apply");
            }
        }
        assert_eq!(sum.value(&DataType::Int64), Ok(i(4)));
        assert_eq!(
            avg.value(&DataType::Float64),
            Ok(ScalarValue::Float64(Some(2.0)))
        );
        assert_eq!(count.value(&DataType::Int64), Ok(i(2)));
        assert_eq!(distinct.value(&DataType::Int64), Ok(i(1)));
        for a in [&mut sum, &mut avg] {
            a.apply(ScalarValue::Int32(Some(2)), -1).expect("retract");
            a.apply(ScalarValue::Int32(Some(2)), -1).expect("retract");
        }
        assert_eq!(sum.value(&DataType::Int64), Ok(ScalarValue::Int64(None)));
        assert_eq!(
            avg.value(&DataType::Float64),
            Ok(ScalarValue::Float64(None))
        );
        let mut dec = Acc::new(AggKind::Sum, &DataType::Decimal128(20, 2));
        dec.apply(ScalarValue::Decimal128(Some(150), 10, 2), 1)
            .expect("decimal");
        dec.apply(ScalarValue::Decimal128(Some(25), 10, 2), 1)
            .expect("decimal");
        assert_eq!(
            dec.value(&DataType::Decimal128(20, 2)),
            Ok(ScalarValue::Decimal128(Some(175), 20, 2))
        );
    }

    #[test]
    fn accumulators_round_trip_through_their_encoding() {
        let mut accs = vec![
            Acc::append_only(AggKind::Min, &DataType::Utf8),
            Acc::append_only(AggKind::Max, &DataType::Utf8),
            Acc::new(AggKind::Count, &DataType::Int64),
            Acc::new(AggKind::Sum, &DataType::Float64),
            Acc::new(AggKind::Avg, &DataType::Float64),
            Acc::new(AggKind::Min, &DataType::Utf8),
            Acc::new(AggKind::Max, &DataType::Utf8),
            Acc::new(AggKind::CountDistinct, &DataType::Int64),
        ];
        for v in ["b", "a", "c", "a"] {
            for a in &mut accs {
                let value = match a.kind() {
                    AggKind::Sum | AggKind::Avg => ScalarValue::Float64(Some(v.len() as f64)),
                    _ => ScalarValue::Utf8(Some(v.into())),
                };
                a.apply(value, 1).expect("apply");
            }
        }
        let mut fields = Vec::new();
        for a in &accs {
            a.encode(&mut fields);
        }
        let mut it = fields.iter();
        for a in &accs {
            let back = Acc::decode(&mut it).expect("decode");
            assert_eq!(back.kind(), a.kind());
            let t = match a.kind() {
                AggKind::Count | AggKind::CountDistinct => DataType::Int64,
                AggKind::Sum | AggKind::Avg => DataType::Float64,
                _ => DataType::Utf8,
            };
            assert_eq!(back.value(&t), a.value(&t));
            assert_eq!(back.heap(), a.heap());
        }
        assert!(it.next().is_none());
        let empty = Acc::append_only(AggKind::Max, &DataType::Int64);
        let mut fields = Vec::new();
        empty.encode(&mut fields);
        let back = Acc::decode(&mut fields.iter()).expect("decode");
        assert_eq!(back.value(&DataType::Int64), Ok(ScalarValue::Int64(None)));
        assert!(matches!(
            back,
            Acc::Best {
                max: true,
                value: None
            }
        ));
    }
}
