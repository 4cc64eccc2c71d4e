//! PostgreSQL's `to_char(number, template)` (integers, NUMERIC, REAL, DOUBLE PRECISION), as
//! "Template Patterns for Numeric Formatting" defines it, in the C locale Weir reports
//! (`lc_numeric = C`: `D` is `.`, `G` is `,`, `L` is a blank, `S` is `+`/`-`).
//!
//! Data flow: [`NumTemplate::parse`] reads the template once into nodes (patterns and
//! literal text) and a description (digits before and after the decimal point, where the
//! first `0` is, which sign patterns, `FM`, `V`, `EEEE`, `RN`), refusing PostgreSQL's
//! invalid combinations with its messages. [`NumTemplate::format`] then turns a value into
//! its digits rounded to the template's decimals, as PostgreSQL does per type (NUMERIC and
//! integers exactly, half away from zero; floating point through C's `%.*f`, limited to 15
//! significant digits for DOUBLE and 6 for REAL), and walks the nodes writing digits,
//! blanks, the sign and separators where PostgreSQL writes them:
//!
//! - `9` a digit, blank when a leading zero; `0` a digit kept even when a leading zero;
//!   `.`/`D` the decimal point; `,`/`G` a group separator (blank before the first digit);
//! - the sign: by default a `-` (or a blank) just before the first digit; `S` anchors it
//!   before or after the number; `MI`, `PL`, `SG` write it at their own position; `PR` puts
//!   a negative number in angle brackets;
//! - `FM` drops blank padding and trailing zeros (except those `0` asks for); `TH`/`th` an
//!   ordinal suffix; `V` multiplies by 10 per following `9`; `EEEE` scientific notation;
//!   `RN`/`rn` Roman numerals (1 to 3999);
//! - too many digits for the template: every digit position shows `#`.
//!
//! Tests: `to_char_number_tests.rs` (PostgreSQL's documented examples and the behaviours
//! its regression tests pin).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, DataFusionError, Result as DfResult};

/// A value to format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// Any integer type (a `UInt64` fits too).
    Int(i128),
    /// A NUMERIC: `value / 10^scale`.
    Decimal {
        value: i128,
        scale: i32,
    },
    Float64(f64),
    Float32(f32),
}

/// One template pattern (PostgreSQL's `NUM_keywords`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Comma,
    Dec,
    Zero,
    Nine,
    Blank,
    C,
    D,
    Eeee,
    Fm,
    G,
    L,
    Mi,
    Pl,
    Pr,
    Rn,
    RnLower,
    Sg,
    Sp,
    S,
    Th,
    ThLower,
    V,
}

/// The patterns, in PostgreSQL's search order (the first whose text starts the rest of
/// the template wins, so `SG` and `SP` before `S`). Exact case.
const KEYWORDS: &[(&str, Key)] = &[
    (",", Key::Comma),
    (".", Key::Dec),
    ("0", Key::Zero),
    ("9", Key::Nine),
    ("B", Key::Blank),
    ("C", Key::C),
    ("D", Key::D),
    ("EEEE", Key::Eeee),
    ("FM", Key::Fm),
    ("G", Key::G),
    ("L", Key::L),
    ("MI", Key::Mi),
    ("PL", Key::Pl),
    ("PR", Key::Pr),
    ("RN", Key::Rn),
    ("SG", Key::Sg),
    ("SP", Key::Sp),
    ("S", Key::S),
    ("TH", Key::Th),
    ("V", Key::V),
    ("b", Key::Blank),
    ("c", Key::C),
    ("d", Key::D),
    ("eeee", Key::Eeee),
    ("fm", Key::Fm),
    ("g", Key::G),
    ("l", Key::L),
    ("mi", Key::Mi),
    ("pl", Key::Pl),
    ("pr", Key::Pr),
    ("rn", Key::RnLower),
    ("sg", Key::Sg),
    ("sp", Key::Sp),
    ("s", Key::S),
    ("th", Key::ThLower),
    ("v", Key::V),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Key(Key),
    Text(String),
}

/// Where `S` anchors the sign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Anchor {
    #[default]
    None,
    Before,
    After,
}

/// What the template asks for (PostgreSQL's `NUMDesc`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Desc {
    /// Digit positions before and after the decimal point; `multi`: after `V`.
    pre: i32,
    post: i32,
    multi: i32,
    /// The first `0` before the decimal point (1-based) and the last `0` (a count of
    /// digit positions).
    zero_start: i32,
    zero_end: i32,
    anchor: Anchor,
    /// Digit positions before `S` when it comes first.
    pre_anchor: i32,
    decimal: bool,
    zero: bool,
    blank: bool,
    fill: bool,
    anchored: bool,
    bracket: bool,
    minus: bool,
    plus: bool,
    roman: bool,
    shift: bool,
    eeee: bool,
}

impl Desc {
    /// Takes pattern `key` into account, refusing what PostgreSQL refuses.
    fn add(&mut self, key: Key) -> Result<(), String> {
        if self.eeee && key != Key::Eeee {
            return Err("\"EEEE\" must be the last pattern used".into());
        }
        match key {
            Key::Nine | Key::Zero => {
                if self.bracket {
                    let which = if key == Key::Nine { '9' } else { '0' };
                    return Err(format!("\"{which}\" must be ahead of \"PR\""));
                }
                if key == Key::Nine && self.shift {
                    self.multi += 1;
                    return Ok(());
                }
                if key == Key::Zero && !self.zero && !self.decimal {
                    self.zero = true;
                    self.zero_start = self.pre + 1;
                }
                if self.decimal {
                    self.post += 1;
                } else {
                    self.pre += 1;
                }
                if key == Key::Zero {
                    self.zero_end = self.pre + self.post;
                }
            }
            Key::Blank => {
                if self.pre == 0 && self.post == 0 && !self.zero {
                    self.blank = true;
                }
            }
            Key::D | Key::Dec => {
                if self.decimal {
                    return Err("multiple decimal points".into());
                }
                if self.shift {
                    return Err("cannot use \"V\" and decimal point together".into());
                }
                self.decimal = true;
            }
            Key::Fm => self.fill = true,
            Key::S => {
                if self.anchored {
                    return Err("cannot use \"S\" twice".into());
                }
                if self.plus || self.minus || self.bracket {
                    return Err("cannot use \"S\" and \"PL\"/\"MI\"/\"SG\"/\"PR\" together".into());
                }
                if !self.decimal {
                    self.anchor = Anchor::Before;
                    self.pre_anchor = self.pre;
                    self.anchored = true;
                } else if self.anchor == Anchor::None {
                    self.anchor = Anchor::After;
                    self.anchored = true;
                }
            }
            Key::Mi | Key::Pl | Key::Sg => {
                if self.anchored {
                    let name = match key {
                        Key::Mi => "MI",
                        Key::Pl => "PL",
                        _ => "SG",
                    };
                    return Err(format!("cannot use \"S\" and \"{name}\" together"));
                }
                self.minus |= key != Key::Pl;
                self.plus |= key != Key::Mi;
            }
            Key::Pr => {
                if self.anchored || self.plus || self.minus {
                    return Err("cannot use \"PR\" and \"S\"/\"PL\"/\"MI\"/\"SG\" together".into());
                }
                self.bracket = true;
            }
            Key::Rn | Key::RnLower => {
                if self.roman {
                    return Err("cannot use \"RN\" twice".into());
                }
                self.roman = true;
            }
            Key::V => {
                if self.decimal {
                    return Err("cannot use \"V\" and decimal point together".into());
                }
                self.shift = true;
            }
            Key::Eeee => {
                if self.eeee {
                    return Err("cannot use \"EEEE\" twice".into());
                }
                if self.blank
                    || self.fill
                    || self.anchored
                    || self.bracket
                    || self.minus
                    || self.plus
                    || self.roman
                    || self.shift
                {
                    return Err(
                        "\"EEEE\" is incompatible with other formats; \"EEEE\" may only \
                                be used together with digit and decimal point patterns"
                            .into(),
                    );
                }
                self.eeee = true;
            }
            Key::Comma | Key::C | Key::G | Key::L | Key::Sp | Key::Th | Key::ThLower => {}
        }
        let others = self.decimal
            || self.zero
            || self.blank
            || self.anchored
            || self.bracket
            || self.minus
            || self.plus
            || self.shift
            || self.eeee;
        if self.roman && others {
            return Err(
                "\"RN\" is incompatible with other formats; \"RN\" may only be used \
                        together with \"FM\""
                    .into(),
            );
        }
        Ok(())
    }
}

/// A parsed number template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumTemplate {
    nodes: Vec<Node>,
    desc: Desc,
}

/// A value as digits, ready to be laid out (PostgreSQL's `numstr`, sign and
/// `out_pre_spaces`), with the description adjusted to it.
struct Digits {
    number: Vec<u8>,
    sign: u8,
    pre_spaces: i32,
    desc: Desc,
}

impl NumTemplate {
    /// Parses `text`; PostgreSQL's message for a template it refuses.
    pub fn parse(text: &str) -> Result<NumTemplate, String> {
        let mut nodes = Vec::new();
        let mut desc = Desc::default();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(&(k, key)) = KEYWORDS.iter().find(|(k, _)| rest.starts_with(k)) {
                desc.add(key)?;
                if !literal.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut literal)));
                }
                nodes.push(Node::Key(key));
                rest = &rest[k.len()..];
                continue;
            }
            super::take_literal(c, &mut rest, &mut literal);
        }
        if !literal.is_empty() {
            nodes.push(Node::Text(literal));
        }
        Ok(NumTemplate { nodes, desc })
    }

    /// `value` laid out by the template.
    pub fn format(&self, value: Number) -> Result<String, String> {
        let desc = self.desc;
        if desc.roman {
            return Ok(self.roman(&roman(value)));
        }
        if desc.eeee {
            return Ok(scientific(value, desc));
        }
        let digits = digits(value, desc)?;
        Ok(Layout::new(digits).write(&self.nodes))
    }

    /// The nodes around a Roman numeral (15 wide, right-aligned, unless `FM`).
    fn roman(&self, numeral: &str) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Key(k @ (Key::Rn | Key::RnLower)) => {
                    let n = if *k == Key::RnLower {
                        numeral.to_lowercase()
                    } else {
                        numeral.to_string()
                    };
                    if self.desc.fill {
                        out.push_str(&n);
                    } else {
                        out.push_str(&format!("{n:>15}"));
                    }
                }
                Node::Key(_) => {}
            }
        }
        out
    }
}

/// `n` in Roman numerals (rounded to an integer: floats to even, NUMERIC away from zero),
/// or fifteen `#` outside 1..=3999.
fn roman(n: Number) -> String {
    let n: Option<i128> = match n {
        Number::Int(i) => Some(i),
        Number::Decimal { value, scale } => {
            let (negative, text) = decimal_text(value, scale, 0);
            text.parse::<i128>()
                .ok()
                .map(|v| if negative { -v } else { v })
        }
        Number::Float64(f) => finite_int(f.round_ties_even()),
        Number::Float32(f) => finite_int(f64::from(f).round_ties_even()),
    };
    let Some(mut n) = n.filter(|n| (1..=3999).contains(n)) else {
        return "#".repeat(15);
    };
    const PARTS: [(i128, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (value, text) in PARTS {
        while n >= value {
            out.push_str(text);
            n -= value;
        }
    }
    out
}

fn finite_int(f: f64) -> Option<i128> {
    (f.is_finite() && f.abs() < 1e30).then_some(f as i128)
}

/// `EEEE`: the value as `d.ddde±XX` with the template's decimals, a blank for the sign of
/// a positive number.
fn scientific(value: Number, desc: Desc) -> String {
    let post = desc.post.max(0) as usize;
    let text = match value {
        Number::Int(i) => decimal_scientific(i, 0, post),
        Number::Decimal { value, scale } => decimal_scientific(value, scale, post),
        Number::Float64(f) => float_scientific(f, post, desc),
        Number::Float32(f) => float_scientific(f64::from(f), post, desc),
    };
    if text.starts_with('-') || text.starts_with(' ') {
        text
    } else {
        format!(" {text}")
    }
}

/// C's `%+.*e` (at least two exponent digits), with a blank for `+`; `#` for NaN and
/// infinities, as wide as a number would be.
fn float_scientific(f: f64, post: usize, desc: Desc) -> String {
    if !f.is_finite() {
        let width = (desc.pre + desc.post + 6).max(1) as usize;
        let mut s: Vec<u8> = vec![b'#'; width];
        s[0] = b' ';
        if let Some(dot) = s.get_mut(desc.pre.max(0) as usize + 1) {
            *dot = b'.';
        }
        return String::from_utf8_lossy(&s).into_owned();
    }
    let text = format!("{f:+.post$e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return text;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mantissa = mantissa.replacen('+', " ", 1);
    format!("{mantissa}e{exponent:+03}")
}

/// NUMERIC's scientific form (PostgreSQL's `numeric_out_sci`): the significand rounded
/// half away from zero to `post` decimals, the exponent of the leading digit.
fn decimal_scientific(value: i128, scale: i32, post: usize) -> String {
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    if value == 0 {
        let frac = if post > 0 {
            format!(".{}", "0".repeat(post))
        } else {
            String::new()
        };
        return format!("0{frac}e+00");
    }
    let exponent = digits.len() as i32 - 1 - scale;
    let mut kept: Vec<u8> = digits.bytes().take(post + 1).collect();
    kept.resize(post + 1, b'0');
    if digits.as_bytes().get(post + 1).is_some_and(|d| *d >= b'5') {
        increment(&mut kept);
    }
    // A carry (9.99 -> 10.0) widens the significand; PostgreSQL keeps it so.
    let split = kept.len() - post;
    let (int, frac) = kept.split_at(split);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&String::from_utf8_lossy(int));
    if post > 0 {
        out.push('.');
        out.push_str(&String::from_utf8_lossy(frac));
    }
    out.push_str(&format!("e{exponent:+03}"));
    out
}

/// Adds one to a string of decimal digits, growing it on a carry out of the first.
fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// `value / 10^scale` rounded half away from zero to `post` decimals, as NUMERIC prints
/// it (`0.50`, `12`); whether it is below zero (a value rounding to zero is not).
fn decimal_text(value: i128, scale: i32, post: i32) -> (bool, String) {
    let mut digits: Vec<u8> = value.unsigned_abs().to_string().into_bytes();
    let mut scale = scale;
    if scale < 0 {
        digits.extend(std::iter::repeat_n(b'0', scale.unsigned_abs() as usize));
        scale = 0;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        let mut padded = vec![b'0'; scale + 1 - digits.len()];
        padded.extend_from_slice(&digits);
        digits = padded;
    }
    let post = post.max(0) as usize;
    let int_len = digits.len() - scale;
    if post < scale {
        let round_up = digits.get(int_len + post).is_some_and(|d| *d >= b'5');
        digits.truncate(int_len + post);
        if round_up {
            increment(&mut digits);
        }
    } else {
        digits.extend(std::iter::repeat_n(b'0', post - scale));
    }
    let int_len = digits.len() - post;
    let (int, frac) = digits.split_at(int_len);
    let int = String::from_utf8_lossy(int);
    let int = int.trim_start_matches('0');
    let mut text = if int.is_empty() {
        "0".to_string()
    } else {
        int.to_string()
    };
    if post > 0 {
        text.push('.');
        text.push_str(&String::from_utf8_lossy(frac));
    }
    let zero = text.bytes().all(|b| b == b'0' || b == b'.');
    (value < 0 && !zero, text)
}

/// The value's digits for the template: multiplied by 10 per `V` digit, rounded to the
/// template's decimals; `#` in every position when the integer part does not fit.
fn digits(value: Number, mut desc: Desc) -> Result<Digits, String> {
    let (negative, text) = match value {
        Number::Int(i) => {
            let i = if desc.shift {
                10_i128
                    .checked_pow(desc.multi.max(0) as u32)
                    .and_then(|m| i.checked_mul(m))
                    .ok_or_else(|| format!("to_char: {i} shifted by V is out of range"))?
            } else {
                i
            };
            let mut text = i.unsigned_abs().to_string();
            if desc.post > 0 {
                text.push('.');
                text.push_str(&"0".repeat(desc.post as usize));
            }
            (i < 0, text)
        }
        Number::Decimal { value, scale } => {
            let scale = if desc.shift {
                scale - desc.multi
            } else {
                scale
            };
            decimal_text(value, scale, desc.post)
        }
        Number::Float64(f) => float_text(f, &mut desc, 15),
        Number::Float32(f) => float_text(f64::from(f), &mut desc, 6),
    };
    if desc.shift {
        desc.pre += desc.multi;
    }
    let pre_len = text.find('.').unwrap_or(text.len()) as i32;
    let mut pre_spaces = 0;
    let number = if pre_len < desc.pre {
        pre_spaces = desc.pre - pre_len;
        text.into_bytes()
    } else if pre_len > desc.pre {
        let mut hashes = vec![b'#'; (desc.pre + desc.post + 1).max(1) as usize];
        if let Some(dot) = hashes.get_mut(desc.pre.max(0) as usize) {
            *dot = b'.';
        }
        hashes
    } else {
        text.into_bytes()
    };
    Ok(Digits {
        number,
        sign: if negative { b'-' } else { b'+' },
        pre_spaces,
        desc,
    })
}

/// A float as C's `%.*f` writes it, its decimals cut so that at most `dig` significant
/// digits show (PostgreSQL's `DBL_DIG`/`FLT_DIG` rule); multiplied first by `V`.
fn float_text(f: f64, desc: &mut Desc, dig: i32) -> (bool, String) {
    let f = if desc.shift {
        f * 10_f64.powi(desc.multi)
    } else {
        f
    };
    if !f.is_finite() {
        // No digits to show: as wide as the template, all `#`.
        return (false, "#".repeat(desc.pre.max(0) as usize + 1));
    }
    let int_len = format!("{:.0}", f.abs()).len() as i32;
    if int_len >= dig {
        desc.post = 0;
    } else if int_len + desc.post > dig {
        desc.post = dig - int_len;
    }
    let text = format!("{:.*}", desc.post.max(0) as usize, f);
    match text.strip_prefix('-') {
        Some(abs) => (true, abs.to_string()),
        None => (false, text),
    }
}

/// Whether `to_char` formats values of type `t` as numbers.
pub(super) fn is_number(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)
        )
}

/// Row `i` of a numeric array (`None`: another type).
fn number_at(values: &ArrayRef, i: usize) -> Option<Number> {
    use datafusion::arrow::datatypes as t;
    let int = |v: i128| Some(Number::Int(v));
    match values.data_type() {
        DataType::Int8 => int(values.as_primitive::<t::Int8Type>().value(i).into()),
        DataType::Int16 => int(values.as_primitive::<t::Int16Type>().value(i).into()),
        DataType::Int32 => int(values.as_primitive::<t::Int32Type>().value(i).into()),
        DataType::Int64 => int(values.as_primitive::<t::Int64Type>().value(i).into()),
        DataType::UInt8 => int(values.as_primitive::<t::UInt8Type>().value(i).into()),
        DataType::UInt16 => int(values.as_primitive::<t::UInt16Type>().value(i).into()),
        DataType::UInt32 => int(values.as_primitive::<t::UInt32Type>().value(i).into()),
        DataType::UInt64 => int(values.as_primitive::<t::UInt64Type>().value(i).into()),
        DataType::Float32 => Some(Number::Float32(
            values.as_primitive::<t::Float32Type>().value(i),
        )),
        DataType::Float64 => Some(Number::Float64(
            values.as_primitive::<t::Float64Type>().value(i),
        )),
        DataType::Decimal128(_, scale) => Some(Number::Decimal {
            value: values.as_primitive::<t::Decimal128Type>().value(i),
            scale: i32::from(*scale),
        }),
        _ => None,
    }
}

/// Formats each number with its row's template (NULL when either is NULL).
pub(super) fn format_array(values: &ArrayRef, templates: &StringArray) -> DfResult<ArrayRef> {
    let failed = |e| DataFusionError::Execution(format!("to_char: {e}"));
    super::format_rows(
        values,
        templates,
        12,
        |text| NumTemplate::parse(text).map_err(failed),
        |template, i| {
            let Some(value) = number_at(values, i) else {
                return exec_err!("to_char: {} is not a number", values.data_type());
            };
            template.format(value).map_err(failed)
        },
    )
}

#[path = "to_char_number_layout.rs"]
mod layout;
use layout::Layout;

#[cfg(test)]
#[path = "to_char_number_tests.rs"]
mod tests;
