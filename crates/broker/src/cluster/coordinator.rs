//! Interim group and transaction coordinator placement in cluster mode (design §7, until
//! coordinators live in replicated internal partitions, increment 6): every broker computes
//! the same coordinator for a key from the image, so all clients meet on one broker, and the
//! coordinator state stays in that broker's node-local `meta/` shard. A coordinator's
//! failure is not covered: its groups and transactions wait for it to come back.

use weir_metadata::{BrokerRegistration, MetadataImage};

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka hashes coordinator keys
/// with: tools computing Kafka's placement agree on the hash.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `Utils.abs`: non-negative, `i32::MIN` maps to 0.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The broker coordinating `key`: among the registered brokers sorted by id, the one at
/// `abs(hash(key)) % count`. Registered rather than unfenced, so a broker's short fence
/// (a missed heartbeat) does not move its groups; None without any broker.
pub fn coordinator_for<'a>(image: &'a MetadataImage, key: &str) -> Option<&'a BrokerRegistration> {
    // `brokers()` is a BTreeMap by id: already sorted.
    let n = image.brokers().len();
    if n == 0 {
        return None;
    }
    let index = usize::try_from(kafka_abs(java_string_hash(key))).unwrap_or(0) % n;
    image.brokers().values().nth(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // Values of "...".hashCode() in Java.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        // Overflows wrap as Java's int arithmetic does.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(kafka_abs(java_string_hash("polygenelubricants")), 0);
    }
}
