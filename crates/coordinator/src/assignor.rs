//! Server-side assignors of the consumer group protocol (KIP-848): from each member's
//! subscription and the partition counts of the subscribed topics to a target assignment.
//!
//! Both are deterministic: members are taken in member id order and partitions in
//! (topic, partition) order, so the same input always yields the same target.

use std::collections::{BTreeMap, BTreeSet};

/// Partitions by topic.
pub(crate) type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// The assignor used when no member asks for one (Kafka's default,
/// `group.consumer.assignors` = uniform, range).
pub(crate) const DEFAULT_ASSIGNOR: &str = "uniform";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Assignor {
    /// Every subscribed partition spread as evenly as subscriptions allow, keeping each
    /// member's previous target where it can.
    Uniform,
    /// Per topic, contiguous ranges in member id order, like the classic range assignor.
    Range,
}

impl Assignor {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "uniform" => Some(Self::Uniform),
            "range" => Some(Self::Range),
            _ => None,
        }
    }

    /// `members`: `(member id, subscribed topics)` in member id order. `partitions`: the
    /// partition count of every subscribed topic that exists. `previous`: the last target,
    /// for stickiness. Every member gets an entry, possibly empty.
    pub fn assign(
        self,
        members: &[(&str, &BTreeSet<String>)],
        partitions: &BTreeMap<String, i32>,
        previous: &BTreeMap<String, Assignment>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            Self::Uniform => uniform(members, partitions, previous),
            Self::Range => range(members, partitions),
        }
    }
}

fn range(
    members: &[(&str, &BTreeSet<String>)],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = members
        .iter()
        .map(|(id, _)| ((*id).to_owned(), Assignment::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&str> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(id, _)| *id)
            .collect();
        let Ok(n) = i32::try_from(subscribers.len()) else {
            continue;
        };
        if n == 0 {
            continue;
        }
        let (quota, extra) = (count / n, count % n);
        let mut start = 0;
        for (i, id) in (0..).zip(subscribers) {
            let len = quota + i32::from(i < extra);
            if len > 0 {
                if let Some(assignment) = target.get_mut(id) {
                    assignment.insert(topic.clone(), (start..start + len).collect());
                }
            }
            start += len;
        }
    }
    target
}

/// Sticky and balanced: each member keeps what it had in the previous target (if still
/// subscribed and the partition still exists), unowned partitions go to the least loaded
/// eligible member, then partitions move from a member to an eligible one holding at least
/// two fewer, until no such move exists. With identical subscriptions counts differ by at
/// most one and the number of moves is minimal; with different subscriptions it is a local
/// optimum (Kafka's general uniform builder searches harder).
fn uniform(
    members: &[(&str, &BTreeSet<String>)],
    partitions: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let exists = |topic: &str, p: i32| partitions.get(topic).is_some_and(|&n| p >= 0 && p < n);
    let mut owned: Vec<BTreeSet<(String, i32)>> = vec![BTreeSet::new(); members.len()];
    let mut taken: BTreeSet<(String, i32)> = BTreeSet::new();
    for ((id, topics), mine) in members.iter().zip(owned.iter_mut()) {
        let Some(before) = previous.get(*id) else {
            continue;
        };
        for (topic, ps) in before {
            if !topics.contains(topic) {
                continue;
            }
            for &p in ps {
                let tp = (topic.clone(), p);
                if exists(topic, p) && taken.insert(tp.clone()) {
                    mine.insert(tp);
                }
            }
        }
    }

    for (topic, &count) in partitions {
        for p in 0..count {
            let tp = (topic.clone(), p);
            if taken.contains(&tp) {
                continue;
            }
            let least_loaded = members
                .iter()
                .zip(owned.iter_mut())
                .filter(|((_, topics), _)| topics.contains(topic))
                .min_by_key(|(_, mine)| mine.len());
            if let Some((_, mine)) = least_loaded {
                taken.insert(tp.clone());
                mine.insert(tp);
            }
        }
    }

    // Each move lowers the sum of squared counts, so this ends.
    while let Some((from, to, tp)) = find_move(members, &owned) {
        if let Some(set) = owned.get_mut(from) {
            set.remove(&tp);
        }
        if let Some(set) = owned.get_mut(to) {
            set.insert(tp);
        }
    }

    members
        .iter()
        .zip(owned)
        .map(|((id, _), mine)| {
            let mut assignment = Assignment::new();
            for (topic, p) in mine {
                assignment.entry(topic).or_default().insert(p);
            }
            ((*id).to_owned(), assignment)
        })
        .collect()
}

/// The most loaded member that can give a partition to an eligible member holding at least
/// two fewer; it gives its last such partition to the least loaded taker.
fn find_move(
    members: &[(&str, &BTreeSet<String>)],
    owned: &[BTreeSet<(String, i32)>],
) -> Option<(usize, usize, (String, i32))> {
    let mut by_load: Vec<usize> = (0..owned.len()).collect();
    by_load.sort_by_key(|&i| std::cmp::Reverse(owned.get(i).map_or(0, BTreeSet::len)));
    for &from in &by_load {
        let from_set = owned.get(from)?;
        let mut takers: Vec<usize> = (0..owned.len())
            .filter(|&to| owned.get(to).map_or(0, BTreeSet::len) + 1 < from_set.len())
            .collect();
        takers.sort_by_key(|&i| owned.get(i).map_or(0, BTreeSet::len));
        for to in takers {
            let (_, topics) = members.get(to)?;
            if let Some(tp) = from_set.iter().rev().find(|(t, _)| topics.contains(t)) {
                return Some((from, to, tp.clone()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(topics: &[&str]) -> BTreeSet<String> {
        topics.iter().map(|t| (*t).to_owned()).collect()
    }

    fn a(entries: &[(&str, &[i32])]) -> Assignment {
        entries
            .iter()
            .map(|(t, ps)| ((*t).to_owned(), ps.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn range_splits_each_topic_in_member_order() {
        let ab = set(&["a", "b"]);
        let b = set(&["b"]);
        let members = [("m1", &ab), ("m2", &ab), ("m3", &b)];
        let partitions = BTreeMap::from([("a".to_owned(), 5), ("b".to_owned(), 3)]);
        let target = Assignor::Range.assign(&members, &partitions, &BTreeMap::new());
        assert_eq!(target["m1"], a(&[("a", &[0, 1, 2]), ("b", &[0])]));
        assert_eq!(target["m2"], a(&[("a", &[3, 4]), ("b", &[1])]));
        assert_eq!(target["m3"], a(&[("b", &[2])]));
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let t = set(&["t"]);
        let partitions = BTreeMap::from([("t".to_owned(), 7)]);
        let previous = BTreeMap::from([("m1".to_owned(), a(&[("t", &[0, 1, 2, 3, 4, 5, 6])]))]);
        let members = [("m1", &t), ("m2", &t), ("m3", &t)];
        let target = Assignor::Uniform.assign(&members, &partitions, &previous);
        assert_eq!(target["m1"], a(&[("t", &[0, 1, 2])]));
        assert_eq!(target["m2"], a(&[("t", &[4, 6])]));
        assert_eq!(target["m3"], a(&[("t", &[3, 5])]));
        // m2 leaves: m1 and m3 keep theirs, m2's two partitions are shared out.
        let members = [("m1", &t), ("m3", &t)];
        let again = Assignor::Uniform.assign(&members, &partitions, &target);
        assert_eq!(again["m1"], a(&[("t", &[0, 1, 2, 6])]));
        assert_eq!(again["m3"], a(&[("t", &[3, 4, 5])]));
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let ab = set(&["a", "b"]);
        let b = set(&["b"]);
        let partitions = BTreeMap::from([("a".to_owned(), 4), ("b".to_owned(), 2)]);
        let members = [("m1", &ab), ("m2", &b)];
        let target = Assignor::Uniform.assign(&members, &partitions, &BTreeMap::new());
        assert_eq!(target["m1"], a(&[("a", &[0, 1, 2, 3])]));
        assert_eq!(target["m2"], a(&[("b", &[0, 1])]));
    }
}
