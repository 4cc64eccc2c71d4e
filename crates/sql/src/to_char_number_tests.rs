//! `to_char` of numbers against PostgreSQL's own results: every example of the "to_char
//! Examples" table of PostgreSQL's documentation
//! (<https://www.postgresql.org/docs/current/functions-formatting.html>, C locale as Weir
//! reports it, so `D` is `.` and `G` is `,`), then results PostgreSQL's regression tests and
//! its `NUM_processor` fix (signs with `PL`, overflow `#`, zero, `FM` with `0`, floats, the
//! refused templates with their messages). The documentation's fractional literals are
//! NUMERIC in PostgreSQL, so they are `Decimal` here.

use super::{NumTemplate, Number};

fn dec(value: i128, scale: i32) -> Number {
    Number::Decimal { value, scale }
}

fn int(i: i128) -> Number {
    Number::Int(i)
}

fn check(cases: &[(Number, &str, &str)]) {
    let mut failures = Vec::new();
    for (value, template, want) in cases {
        let got = NumTemplate::parse(template).and_then(|t| t.format(*value));
        if got.as_deref() != Ok(*want) {
            failures.push(format!(
                "to_char({value:?}, {template:?}) = {got:?}, want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn postgresql_documentation_examples() {
    check(&[
        (dec(-1, 1), "99.99", "  -.10"),
        (dec(-1, 1), "FM9.99", "-.1"),
        (dec(-1, 1), "FM90.99", "-0.1"),
        (dec(1, 1), "0.9", " 0.1"),
        (int(12), "9990999.9", "    0012.0"),
        (int(12), "FM9990999.9", "0012."),
        (int(485), "999", " 485"),
        (int(-485), "999", "-485"),
        (int(485), "9 9 9", " 4 8 5"),
        (int(1485), "9,999", " 1,485"),
        (int(1485), "9G999", " 1,485"),
        (dec(1485, 1), "999.999", " 148.500"),
        (dec(1485, 1), "FM999.999", "148.5"),
        (dec(1485, 1), "FM999.990", "148.500"),
        (dec(1485, 1), "999D999", " 148.500"),
        (dec(31485, 1), "9G999D999", " 3,148.500"),
        (int(-485), "999S", "485-"),
        (int(-485), "999MI", "485-"),
        (int(485), "999MI", "485 "),
        (int(485), "FM999MI", "485"),
        (int(485), "PL999", "+ 485"),
        (int(485), "SG999", "+485"),
        (int(-485), "SG999", "-485"),
        (int(-485), "9SG99", "4-85"),
        (int(-485), "999PR", "<485>"),
        (int(485), "L999", "  485"),
        (int(485), "RN", "        CDLXXXV"),
        (int(485), "FMRN", "CDLXXXV"),
        (dec(52, 1), "FMRN", "V"),
        (int(482), "999th", " 482nd"),
        (int(485), "\"Good number:\"999", "Good number: 485"),
        (
            dec(4858, 1),
            "\"Pre:\"999\" Post:\" .999",
            "Pre: 485 Post: .800",
        ),
        (int(12), "99V999", " 12000"),
        (dec(124, 1), "99V999", " 12400"),
        (dec(1245, 2), "99V9", " 125"),
        (dec(4859, 7), "9.99EEEE", " 4.86e-04"),
        // The function table's examples.
        (int(125), "999", " 125"),
        (Number::Float32(125.8), "999D9", " 125.8"),
        (dec(-1258, 1), "999D99S", "125.80-"),
    ]);
}

#[test]
fn signs_overflow_zero_and_fill_mode() {
    check(&[
        // PL does not replace the ordinary sign; MI and SG do.
        (int(-485), "PL999", " -485"),
        (int(485), "999PL", " 485+"),
        (int(-485), "999PL", "-485 "),
        (int(485), "S999", "+485"),
        (int(-485), "S999", "-485"),
        (int(485), "999S", "485+"),
        (int(485), "999PR", " 485 "),
        (int(485), "FM999PR", "485"),
        (int(-485), "FM999PR", "<485>"),
        (int(-485), "FMSG999", "-485"),
        // Too many digits: every position is '#'.
        (int(1234), "99", " ##"),
        (int(-1234), "99.9", "-##.#"),
        (dec(12345, 1), "99.99", " ##.##"),
        // Zero and values below one.
        (int(0), "999", "   0"),
        (int(0), "9.99", "  .00"),
        (int(0), "FM9.99", "0."),
        (int(0), "0.00", " 0.00"),
        (dec(5, 1), "999", "   1"),
        (dec(-5, 1), "999", "  -1"),
        (dec(-4, 3), "9.99", "  .00"),
        // Group separators before the first digit are blank (dropped by FM).
        (int(12), "9,999", "    12"),
        (int(12), "FM9,999", "12"),
        (int(1234567), "9,999,999", " 1,234,567"),
        (int(-1234567), "FM9G999G999", "-1,234,567"),
        // Ordinals: teens take "th"; negative numbers and decimals none.
        (int(11), "99th", " 11th"),
        (int(21), "99TH", " 21ST"),
        (int(113), "FM999th", "113th"),
        (int(-1), "99th", " -1"),
        // Exponents (NUMERIC rounds half away from zero; at least two exponent digits).
        (int(0), "9.99EEEE", " 0.00e+00"),
        (int(-123456), "9.99EEEE", "-1.23e+05"),
        (dec(15, 1), "9EEEE", " 2e+00"),
        // Roman numerals out of range.
        (int(0), "RN", "###############"),
        (int(4000), "FMrn", "###############"),
        (int(1994), "FMrn", "mcmxciv"),
    ]);
}

#[test]
fn floats_as_postgresql_formats_double_precision() {
    check(&[
        (Number::Float64(148.5), "999.999", " 148.500"),
        (Number::Float64(-0.1), "99.99", "  -.10"),
        (Number::Float64(0.0004859), "9.99EEEE", " 4.86e-04"),
        (Number::Float64(-12345.678), "99999.9", "-12345.7"),
        (Number::Float64(2.5), "9", " 2"),
        (Number::Float64(f64::INFINITY), "9.99EEEE", " #.######"),
        // DBL_DIG: at most 15 significant digits, the rest of the template ends there.
        (
            Number::Float64(123456789012.5),
            "999999999999.999",
            " 123456789012.500",
        ),
        (
            Number::Float64(1.0),
            "9.9999999999999999",
            " 1.00000000000000",
        ),
    ]);
}

#[test]
fn refused_templates_say_why_as_postgresql_does() {
    for (template, says) in [
        ("99.9.9", "multiple decimal points"),
        ("S99S", "cannot use \"S\" twice"),
        ("S99MI", "cannot use \"S\" and \"MI\" together"),
        ("99PR9", "\"9\" must be ahead of \"PR\""),
        ("9V9.9", "cannot use \"V\" and decimal point together"),
        ("9.99EEEE9", "\"EEEE\" must be the last pattern used"),
        ("FM9.99EEEE", "\"EEEE\" is incompatible with other formats"),
        ("RN9.9", "\"RN\" is incompatible with other formats"),
    ] {
        let err = NumTemplate::parse(template).expect_err(template);
        assert!(err.contains(says), "{template}: {err}");
    }
}
