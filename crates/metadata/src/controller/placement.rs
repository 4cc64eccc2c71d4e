//! Where new replicas go: rack-aware striping in the manner of Kafka's replica placer.
//! Leaders rotate over the brokers, followers are shifted by a per-round offset so that
//! replica sets differ between partitions, and each partition's replicas cover as many
//! racks as there are before any rack is used twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::BrokerId;

/// Brokers in an order that alternates racks: the first broker of every rack (racks by
/// name), then the second of every rack, and so on. A broker without a rack forms the
/// rack `""`.
fn rack_alternated(image: &MetadataImage) -> (Vec<BrokerId>, BTreeMap<BrokerId, String>) {
    let mut by_rack: BTreeMap<String, Vec<BrokerId>> = BTreeMap::new();
    let mut rack_of = BTreeMap::new();
    for (id, b) in image.brokers() {
        if image.broker_usable(*id) {
            let rack = b.rack.clone().unwrap_or_default();
            by_rack.entry(rack.clone()).or_default().push(*id);
            rack_of.insert(*id, rack);
        }
    }
    let mut out = Vec::new();
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for brokers in by_rack.values() {
            if let Some(id) = brokers.get(i) {
                out.push(*id);
            }
        }
    }
    (out, rack_of)
}

/// Replicas for partitions `first..first + count` with `rf` replicas each, over the
/// usable brokers (KIP-841: never fenced or shutting-down ones). `start` rotates the
/// first leader so consecutive topics do not all start on the same broker.
pub(crate) fn place(
    image: &MetadataImage,
    first: i32,
    count: i32,
    rf: i16,
    start: usize,
) -> Result<Vec<Vec<BrokerId>>, MetadataError> {
    let (brokers, rack_of) = rack_alternated(image);
    let n = brokers.len();
    let rf = usize::try_from(rf).unwrap_or(0);
    if rf == 0 || rf > n {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "replication factor {rf} with {n} usable brokers"
        )));
    }
    let racks = rack_of.values().collect::<BTreeSet<_>>().len();
    let mut out = Vec::new();
    for p in first..first.saturating_add(count) {
        let p = usize::try_from(p).unwrap_or(0);
        // Every full round over the brokers shifts the followers by one more step.
        let shift = p / n;
        let leader_index = (p + start) % n;
        let mut replicas = Vec::with_capacity(rf);
        let mut used_racks = BTreeSet::new();
        let leader = brokers.get(leader_index).copied().unwrap_or_default();
        replicas.push(leader);
        used_racks.insert(rack_of.get(&leader));
        let mut k = 0;
        while replicas.len() < rf {
            let index = follower_index(leader_index, shift, k, n);
            k += 1;
            let Some(&candidate) = brokers.get(index) else {
                continue;
            };
            let rack = rack_of.get(&candidate);
            let rack_ok = !used_racks.contains(&rack) || used_racks.len() == racks;
            // Once every rack has one replica, later replicas may share racks again.
            if (rack_ok || k > n * n) && !replicas.contains(&candidate) {
                replicas.push(candidate);
                used_racks.insert(rack);
                if used_racks.len() == racks {
                    used_racks.clear();
                    used_racks.insert(rack_of.get(&leader));
                }
            }
        }
        out.push(replicas);
    }
    Ok(out)
}

fn follower_index(leader: usize, shift: usize, k: usize, n: usize) -> usize {
    if n <= 1 {
        return leader;
    }
    (leader + 1 + (shift + k) % (n - 1)) % n
}
