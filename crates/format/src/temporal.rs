//! Durations as text. Arrow displays a `Duration` in ISO 8601 (`PT3723S`, `PT0.5S`,
//! `-PT90S`, `P0D`), which is what a view's or sink's JSON holds for one (the difference of
//! two timestamps, say); [`duration_nanos`] reads that back, the fuller ISO 8601 form with
//! days, hours and minutes (`P1DT2H3M4.5S`), and PostgreSQL-style interval text without
//! months (`1 day 2 hours`, `90 secs`), the forms a producer might write.

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The duration `s` denotes, in nanoseconds; `None` when it is not one (or out of range, or
/// has months, whose length varies).
pub fn duration_nanos(s: &str) -> Option<i64> {
    iso8601(s).or_else(|| {
        let i = arrow_cast::parse::parse_interval_month_day_nano(s).ok()?;
        if i.months != 0 {
            return None;
        }
        i64::from(i.days)
            .checked_mul(86_400 * NANOS_PER_SECOND)?
            .checked_add(i.nanoseconds)
    })
}

/// `[-]P[nD][T[nH][nM][n[.f]S]]`, at least one part.
fn iso8601(s: &str) -> Option<i64> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = rest.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    let mut add = |n: i64| -> Option<()> {
        total = total.checked_add(n)?;
        parts += 1;
        Some(())
    };
    if !date.is_empty() {
        let days = date.strip_suffix('D')?.parse::<i64>().ok()?;
        add(days.checked_mul(86_400 * NANOS_PER_SECOND)?)?;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return None;
        }
        for (unit, nanos) in [
            ('H', 3_600 * NANOS_PER_SECOND),
            ('M', 60 * NANOS_PER_SECOND),
        ] {
            if let Some((n, after)) = t.split_once(unit) {
                add(n.parse::<i64>().ok()?.checked_mul(nanos)?)?;
                t = after;
            }
        }
        if !t.is_empty() {
            add(seconds(t.strip_suffix('S')?)?)?;
        }
    }
    if parts == 0 {
        return None;
    }
    Some(if negative {
        total.checked_neg()?
    } else {
        total
    })
}

/// `n` or `n.f` seconds (up to 9 fraction digits) in nanoseconds.
fn seconds(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().enumerate() {
        nanos += i64::from(d - b'0') * 10_i64.pow(8 - u32::try_from(i).ok()?);
    }
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(NANOS_PER_SECOND)?
        .checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, DurationMicrosecondArray, DurationNanosecondArray};
    use arrow_cast::display::{ArrayFormatter, FormatOptions};

    #[test]
    fn reads_what_arrow_displays_and_what_people_write() {
        let s = NANOS_PER_SECOND;
        for (text, want) in [
            ("PT3723S", Some(3_723 * s)),
            ("PT0.5S", Some(s / 2)),
            ("-PT90S", Some(-90 * s)),
            ("P0D", Some(0)),
            ("P1DT2H3M4.000000005S", Some(93_784 * s + 5)),
            ("PT2H", Some(7_200 * s)),
            ("1 day 2 hours", Some(93_600 * s)),
            ("90 secs", Some(90 * s)),
            ("1 month", None),
            ("P", None),
            ("PT", None),
            ("PT1.0000000001S", None),
            ("PTxS", None),
            ("soon", None),
        ] {
            assert_eq!(duration_nanos(text), want, "{text}");
        }
    }

    #[test]
    fn every_displayed_duration_reads_back() {
        let values = [
            0,
            1,
            -1,
            999_999,
            1_000_000,
            3_723_000_001,
            -86_400_000_000_123,
            i64::MAX / 2,
        ];
        let nanos = DurationNanosecondArray::from(values.to_vec());
        let micros = DurationMicrosecondArray::from(values.to_vec());
        for (array, scale) in [(&nanos as &dyn Array, 1), (&micros as &dyn Array, 1_000)] {
            let f = ArrayFormatter::try_new(array, &FormatOptions::default()).expect("formatter");
            for (i, v) in values.iter().enumerate() {
                let text = f.value(i).to_string();
                assert_eq!(duration_nanos(&text), v.checked_mul(scale), "{text}");
            }
        }
    }
}
