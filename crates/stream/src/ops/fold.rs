//! The net change of an updating aggregate per epoch (§6, mini-batch): the groups changed
//! since the last flush, each with its output row as it was before its first change, so a
//! group that changes a thousand times in an epoch emits one retraction and one new row
//! (or nothing, if it came back to where it was), not a thousand pairs.
//!
//! An aggregate folds its input into its groups and records each group it touches here;
//! at the barrier it [`EpochFold::flush`]es everything, so every checkpoint's state holds
//! only groups whose output has gone downstream before the barrier and nothing pending is
//! ever checkpointed. Before a group can be freed (its window closed, a TTL), the operator
//! flushes it first with [`EpochFold::flush_if`], so its last row still leaves.
//!
//! Downstream sees fewer, later changes but the same net contents at every barrier; and
//! since a view's topic and its sinks are written in the epoch's transaction, a reader sees
//! nothing sooner either way. Nexmark q5 (five hopping windows per bid, two aggregates,
//! a join) is what this is for: Flink folds the same way (`table.exec.mini-batch`).

use arrow_array::ArrayRef;
use datafusion_common::{HashMap, ScalarValue};

use crate::error::StreamError;

/// Bytes a pending group costs beyond its key and values, for the memory budget.
const ENTRY_OVERHEAD: usize = 96;

/// A pending group: its state key, its key values, its output before the epoch's changes.
pub(crate) struct Pending {
    pub key: Vec<u8>,
    pub values: Vec<ScalarValue>,
    pub old: Option<Vec<ScalarValue>>,
}

/// The groups changed since the last flush, in first-touched order. One taken out before
/// the barrier leaves an empty slot (the vector is emptied at every barrier), so taking
/// a closing window's groups costs a lookup each, not a rebuild of what stays.
#[derive(Default)]
pub(crate) struct EpochFold {
    index: HashMap<Vec<u8>, usize>,
    pending: Vec<Option<Pending>>,
    bytes: usize,
}

impl Pending {
    fn cost(&self) -> usize {
        2 * self.key.len()
            + ENTRY_OVERHEAD
            + scalars_size(&self.values)
            + self.old.as_deref().map_or(0, scalars_size)
    }
}

impl EpochFold {
    /// Records that the group at `key` is about to change; on its first change since the
    /// last flush, `first` gives its key values and its current output (`None`: no group).
    pub(crate) fn touch(
        &mut self,
        key: &[u8],
        first: impl FnOnce() -> Result<(Vec<ScalarValue>, Option<Vec<ScalarValue>>), StreamError>,
    ) -> Result<(), StreamError> {
        if self.index.contains_key(key) {
            return Ok(());
        }
        let (values, old) = first()?;
        let p = Pending {
            key: key.to_vec(),
            values,
            old,
        };
        self.bytes += p.cost();
        self.index.insert(key.to_vec(), self.pending.len());
        self.pending.push(Some(p));
        Ok(())
    }

    /// [`touch`](Self::touch) for row `row` of the evaluated group columns `keys`; `old`
    /// gives the group's current output on its first change.
    pub(crate) fn touch_row(
        &mut self,
        key: &[u8],
        keys: &[ArrayRef],
        row: usize,
        old: impl FnOnce() -> Result<Option<Vec<ScalarValue>>, StreamError>,
    ) -> Result<(), StreamError> {
        self.touch(key, || {
            let values = keys
                .iter()
                .map(|k| ScalarValue::try_from_array(k, row))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((values, old()?))
        })
    }

    /// Groups pending.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes held, for the memory budget.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every pending group, in first-touched order; nothing is pending after.
    pub(crate) fn flush(&mut self) -> Vec<Pending> {
        self.index.clear();
        self.bytes = 0;
        std::mem::take(&mut self.pending)
            .into_iter()
            .flatten()
            .collect()
    }

    /// The group at `key`, if pending; it is pending no more.
    pub(crate) fn take(&mut self, key: &[u8]) -> Option<Pending> {
        let i = self.index.remove(key)?;
        let p = self.pending.get_mut(i)?.take()?;
        self.bytes = self.bytes.saturating_sub(p.cost());
        Some(p)
    }

    /// The pending groups for which `due` holds, in first-touched order; the rest stay.
    pub(crate) fn flush_if(&mut self, mut due: impl FnMut(&Pending) -> bool) -> Vec<Pending> {
        let mut out = Vec::new();
        for slot in &mut self.pending {
            if slot.as_ref().is_some_and(&mut due) {
                if let Some(p) = slot.take() {
                    self.index.remove(&p.key);
                    self.bytes = self.bytes.saturating_sub(p.cost());
                    out.push(p);
                }
            }
        }
        out
    }
}

fn scalars_size(values: &[ScalarValue]) -> usize {
    values.iter().map(ScalarValue::size).sum()
}

/// The rows `pending` groups emit: for each whose output changed (`now` gives it, `None`
/// for a freed group), the retraction of the old row and the new row, adjacent; each row
/// is the key values, the aggregates and `_retract`.
pub(crate) fn changes(
    pending: Vec<Pending>,
    mut now: impl FnMut(&Pending) -> Result<Option<Vec<ScalarValue>>, StreamError>,
) -> Result<Vec<Vec<ScalarValue>>, StreamError> {
    let mut rows = Vec::new();
    for p in pending {
        let new = now(&p)?;
        if new == p.old {
            continue;
        }
        if let Some(old) = p.old {
            rows.push(row(&p.values, old, true));
        }
        if let Some(new) = new {
            rows.push(row(&p.values, new, false));
        }
    }
    Ok(rows)
}

fn row(keys: &[ScalarValue], aggs: Vec<ScalarValue>, retract: bool) -> Vec<ScalarValue> {
    keys.iter()
        .cloned()
        .chain(aggs)
        .chain([ScalarValue::Boolean(Some(retract))])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i64) -> ScalarValue {
        ScalarValue::Int64(Some(v))
    }

    #[test]
    fn a_group_is_recorded_once_with_its_first_output_and_flushes_in_order() {
        let mut f = EpochFold::default();
        for (k, old) in [(b"b", 1), (b"a", 5), (b"b", 2)] {
            f.touch(k, || Ok((vec![int(old)], Some(vec![int(old * 10)]))))
                .expect("touch");
        }
        assert_eq!(f.len(), 2);
        assert!(f.bytes() > 0);
        let due = f.flush_if(|p| p.key == b"a");
        assert_eq!(due.len(), 1);
        assert_eq!((f.len(), f.index.get(&b"b"[..]).copied()), (1, Some(0)));
        assert!(f.take(b"a").is_none(), "flushed already");
        // Touching a flushed group again records its output anew.
        f.touch(b"a", || Ok((vec![int(5)], None))).expect("touch");
        let all = f.flush();
        let keys: Vec<&[u8]> = all.iter().map(|p| p.key.as_slice()).collect();
        assert_eq!(keys, [&b"b"[..], &b"a"[..]]);
        assert_eq!(all[0].old, Some(vec![int(10)]), "the first touch's output");
        assert_eq!((f.len(), f.bytes()), (0, 0));
        assert!(f.flush_if(|_| true).is_empty());
        // One group taken out: the rest flush in order, the bytes fall back to nothing.
        for k in [b"x", b"y", b"z"] {
            f.touch(k, || Ok((vec![int(1)], None))).expect("touch");
        }
        let y = f.take(b"y").expect("pending");
        assert_eq!((y.key.as_slice(), f.len()), (&b"y"[..], 2));
        assert!(f.take(b"y").is_none());
        let keys: Vec<Vec<u8>> = f.flush().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, [b"x".to_vec(), b"z".to_vec()]);
        assert_eq!(f.bytes(), 0);
    }

    #[test]
    fn changes_are_net_retractions_and_inserts_and_nothing_for_a_group_back_where_it_was() {
        let p = |k: &[u8], old: Option<i64>| Pending {
            key: k.to_vec(),
            values: vec![int(k[0].into())],
            old: old.map(|o| vec![int(o)]),
        };
        let pending = vec![
            p(b"a", Some(1)),
            p(b"b", None),
            p(b"c", Some(3)),
            p(b"d", Some(4)),
        ];
        let rows = changes(pending, |p| {
            Ok(match p.key.as_slice() {
                b"a" => Some(vec![int(2)]),
                b"b" => Some(vec![int(7)]),
                b"c" => Some(vec![int(3)]),
                _ => None,
            })
        })
        .expect("changes");
        let t = |v| ScalarValue::Boolean(Some(v));
        assert_eq!(
            rows,
            [
                vec![int(97), int(1), t(true)],
                vec![int(97), int(2), t(false)],
                vec![int(98), int(7), t(false)],
                vec![int(100), int(4), t(true)],
            ]
        );
    }
}
