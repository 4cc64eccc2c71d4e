//! The opt-in idle-state TTL of a continuous query (Flink's `table.exec.state.ttl`):
//!
//! ```sql
//! SET streaming.state_ttl = '1 hour';            -- then CREATE MATERIALIZED VIEW / SINK
//! CREATE SINK s AS SELECT ... WITH (state_ttl = '10 minutes', ...);
//! ```
//!
//! Updating aggregates, regular joins and top-N then drop a key (a group, a join key's rows
//! on one side, a partition) that has not been written for that long, so state without a
//! time bound (Nexmark q17, q18, q20) stays bounded by the keys active within the TTL. The
//! results may then differ from the batch query: a key that comes back after expiring starts
//! afresh, a row that would have joined an expired one does not, and a retraction of an
//! expired row is ignored, as users of Flink's TTL expect.
//!
//! The TTL is measured in **event time**, by the watermark reaching each operator (not the
//! wall clock as in Flink), when a source of the query declares `WATERMARK FOR`: recovery
//! and a backlog read at full speed expire the same keys at the same points of the input as
//! the live run, results do not depend on processing speed, and a pipeline down for a day
//! keeps its state. A query without a watermark measures it by the **wall clock**, as Flink
//! does, read at every checkpoint (`weir_stream::graph::TtlTime`). The session's value is stored with the
//! view or sink at CREATE (catalog option `state_ttl`), so a restart plans it alike; a
//! sink's own `WITH (state_ttl = ..)` wins over the session's.

use crate::error::SqlError;

/// Session variables that set the TTL of the views and sinks created next (Weir's, Flink's).
pub const SESSION_VARS: &[&str] = &["streaming.state_ttl", "table.exec.state.ttl"];

/// The sink option and catalog option holding it.
pub const OPTION: &str = "state_ttl";

/// `'1 hour'`, `'10 minutes'`, `'30 s'`, `'500ms'`, `'2d'`, a bare number of milliseconds;
/// `'0'` or `'none'` for no TTL. In milliseconds.
pub fn parse(text: &str) -> Result<Option<i64>, SqlError> {
    let t = text.trim().trim_matches('\'').trim().to_lowercase();
    if t == "none" || t == "off" {
        return Ok(None);
    }
    let bad = || {
        SqlError::Invalid(format!(
            "state_ttl = '{text}': a duration like '1 hour', '10 minutes', '30 s' or '500 ms', \
             or 'none'"
        ))
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit.trim() {
        "" | "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    Ok((ms > 0).then_some(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_of_event_time() {
        assert_eq!(parse("1 hour").ok(), Some(Some(3_600_000)));
        assert_eq!(parse("'10 minutes'").ok(), Some(Some(600_000)));
        assert_eq!(parse("30s").ok(), Some(Some(30_000)));
        assert_eq!(parse("250").ok(), Some(Some(250)));
        assert_eq!(parse("2 DAYS").ok(), Some(Some(172_800_000)));
        assert_eq!(parse("none").ok(), Some(None));
        assert_eq!(parse("0").ok(), Some(None));
        assert!(parse("soon").is_err());
        assert!(parse("1 fortnight").is_err());
        assert!(parse("99999999999999999 days").is_err());
    }
}
