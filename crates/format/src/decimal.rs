//! Decimal text (`-12.5`, `.5`, `1.25e3`) to the unscaled `i128` of a `Decimal128(precision,
//! scale)` column.
//!
//! Digits past the scale are dropped, as Arrow's `parse_decimal` does, and a value with more
//! significant digits than the precision is refused. Arrow's parser is not used because it keeps
//! the exponent and the digit counts in `i16`: an exponent past 32,767 (or that many digits)
//! overflows, a panic in a debug build and a wrong value in a release one. Here every position is
//! an `i64` and the exponent is clamped far beyond any precision, so no text can overflow it.

/// The largest exponent kept: beyond any digit count a record can hold, so a clamped one
/// still says "zero" or "too large", and positions (digit counts plus it) stay in an i64.
const EXPONENT_LIMIT: i64 = 1 << 60;

/// Parses `s` (already trimmed) into the unscaled value of a decimal of `precision` and `scale`.
pub(crate) fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let bad = || format!("can't parse the string value {s} to decimal");
    let bytes = s.as_bytes();
    let (negative, rest) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, rest) = rest.split_at(int_len);
    let (frac, rest) = match rest.split_first() {
        Some((b'.', after)) => {
            let n = after.iter().take_while(|b| b.is_ascii_digit()).count();
            after.split_at(n)
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let exponent = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', after)) => parse_exponent(after).ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };

    // Digit i of int ++ frac stands for 10^(ones - 1 - i) in unscaled units.
    let digits = int.iter().chain(frac).map(|b| b - b'0');
    let count = (int.len() + frac.len()) as i64;
    let ones = int.len() as i64 + exponent + i64::from(scale);
    let kept = count.min(ones.max(0));
    let Some(first) = digits.clone().take(kept as usize).position(|d| d != 0) else {
        return Ok(0);
    };
    if ones - first as i64 > i64::from(precision) {
        return Err(format!("parse decimal overflow ({s})"));
    }
    // At most `precision` (≤ 38) significant digits: the value fits an i128.
    let mut value = digits
        .take(kept as usize)
        .skip(first)
        .fold(0i128, |v, d| v * 10 + i128::from(d));
    for _ in kept..ones {
        value *= 10;
    }
    Ok(if negative { -value } else { value })
}

/// An exponent's optional sign and digits, clamped to ±[`EXPONENT_LIMIT`].
fn parse_exponent(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first()? {
        (b'-', after) => (true, after),
        (b'+', after) => (false, after),
        _ => (false, bytes),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |e, b| {
        e.saturating_mul(10)
            .saturating_add(i64::from(b - b'0'))
            .min(EXPONENT_LIMIT)
    });
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use arrow_array::types::Decimal128Type;

    use super::parse_decimal;

    /// `m` with its point moved `e` places (plain text, no exponent): what `m` e `e` means.
    fn shifted(m: &str, e: i64) -> String {
        let (sign, m) = match m.strip_prefix(['-', '+']) {
            Some(rest) => (&m[..1], rest),
            None => ("", m),
        };
        let (int, frac) = m.split_once('.').unwrap_or((m, ""));
        let digits = format!("{int}{frac}");
        let point = int.len() as i64 + e;
        let plain = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(-point as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{plain}")
    }

    #[test]
    fn reads_plain_text_as_arrow_does_and_an_exponent_as_its_shifted_point() {
        let valid = [
            "0",
            "5",
            "12",
            "12.5",
            "-12.5",
            "+7.25",
            ".5",
            "5.",
            "0.001",
            "-0.000",
            "00012.3400",
            "99999999",
            "123456789012",
            "1.23456789",
            "-98765.4321",
        ];
        let invalid = [
            "", ".", "-", "1.2.3", "1a", "a", "1 2", "+-1", "1e", "1e+", "1e1.5", "e5",
        ];
        let exponents = [0, 2, -2, 3, -9, 12, -40];
        let types = [(10u8, 2i8), (38, 0), (38, 10), (5, 5), (1, 0), (20, 4)];
        let mut compared = 0;
        for (p, sc) in types {
            let arrow = |s: &str| arrow_cast::parse::parse_decimal::<Decimal128Type>(s, p, sc);
            for m in valid {
                let plain = (parse_decimal(m, p, sc), arrow(m));
                match plain {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{m:?} as ({p}, {sc})"),
                    (Err(_), Err(_)) => {}
                    other => panic!("{m:?} as ({p}, {sc}): {other:?}"),
                }
                // Arrow's own e-notation refuses "0e0" and counts the leading zeros of
                // "0.001E2" as digits: the oracle is the point moved in the text.
                for e in exponents {
                    let [upper, lower] = [format!("{m}E{e}"), format!("{m}e+{e}")];
                    let want = arrow(&shifted(m, e)).map_err(|_| ());
                    assert_eq!(
                        parse_decimal(&upper, p, sc).map_err(|_| ()),
                        want,
                        "{upper:?}"
                    );
                    if e >= 0 {
                        assert_eq!(
                            parse_decimal(&lower, p, sc).map_err(|_| ()),
                            want,
                            "{lower:?}"
                        );
                    }
                    compared += 1;
                }
            }
            for s in invalid {
                // (Arrow reads "e5" as zero.)
                assert!(parse_decimal(s, p, sc).is_err(), "{s:?}");
            }
        }
        assert!(compared > 500);
    }

    #[test]
    fn huge_exponents_and_long_digit_runs_never_overflow() {
        // The text the fuzzer found: an exponent of 29 digits.
        let e = "81.4440737095E55555555555555555555555555555";
        assert!(parse_decimal(e, 10, 2).unwrap_err().contains("overflow"));
        assert_eq!(parse_decimal("1e-99999999999999999999", 10, 2), Ok(0));
        assert_eq!(parse_decimal("0e99999999999999999999", 10, 2), Ok(0));
        let long = format!("0.{}1e40000", "0".repeat(40_000));
        assert_eq!(parse_decimal(&long, 10, 2), Ok(10));
        let many = format!("{}e-40000", "1".repeat(40_000));
        assert_eq!(parse_decimal(&many, 10, 2), Ok(11));
        assert!(parse_decimal(&"9".repeat(70_000), 38, 0).is_err());
        assert_eq!(
            parse_decimal(&"9".repeat(38), 38, 0),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert_eq!(parse_decimal("-1.5e3", 10, 2), Ok(-150_000));
        // Digit runs longer than any exponent a clamp would have cut short.
        let tiny = format!("0.{}1e2000010", "0".repeat(2_000_000));
        assert!(parse_decimal(&tiny, 10, 2)
            .unwrap_err()
            .contains("overflow"));
        let huge = format!("{}e-2000010", "1".repeat(2_000_000));
        assert_eq!(parse_decimal(&huge, 10, 2), Ok(0));
        // A negative scale counts in hundreds (Arrow's parser reads "1234" as 1234 hundreds).
        assert_eq!(parse_decimal("1234", 18, -2), Ok(12));
        assert_eq!(parse_decimal("1.5e4", 18, -2), Ok(150));
    }
}
