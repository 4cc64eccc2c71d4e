//! The layout of a number under a template (PostgreSQL's `NUM_processor` for `to_char`):
//! given the value's digits, sign and leading blanks ([`super::Digits`]), a walk over the
//! template's nodes decides at each digit position whether a blank, a leading `0`, the
//! sign, a digit or the decimal point goes there, and where `S` and `PR` close the number.

use super::{Anchor, Desc, Digits, Key, Node};

/// The walk over the template writing a number (PostgreSQL's `NUM_processor` for
/// `to_char`): where the sign, blanks, leading zeros and the decimal point go.
pub(super) struct Layout {
    number: Vec<u8>,
    sign: u8,
    pre_spaces: i32,
    desc: Desc,
    sign_wrote: bool,
    num_count: i32,
    num_curr: i32,
    num_in: bool,
    /// The next character of `number` to write.
    at: usize,
    /// With `FM` and decimals: the last character worth writing (trailing zeros dropped
    /// unless a `0` asks for them).
    last_relevant: Option<usize>,
    out: Vec<u8>,
}

impl Layout {
    pub(super) fn new(d: Digits) -> Layout {
        let mut desc = d.desc;
        // 0-based from here.
        if desc.zero_start > 0 {
            desc.zero_start -= 1;
        }
        let sign_wrote = if desc.plus || desc.minus {
            // MI and SG write the sign themselves; PL only a plus.
            !desc.plus || desc.minus
        } else {
            if d.sign != b'-' && desc.bracket && desc.fill {
                desc.bracket = false;
            }
            if desc.anchor == Anchor::Before && desc.pre == desc.pre_anchor {
                desc.anchor = Anchor::After;
            }
            d.sign == b'+' && desc.fill && !desc.anchored
        };
        let mut num_count = desc.post + desc.pre - 1;
        let mut last_relevant = None;
        if desc.fill && desc.decimal {
            last_relevant = last_relevant_decimal(&d.number);
            if let Some(last) = last_relevant {
                if desc.zero_end > d.pre_spaces {
                    let last_zero = ((desc.zero_end - d.pre_spaces) as usize)
                        .min(d.number.len().saturating_sub(1));
                    if last < last_zero {
                        last_relevant = Some(last_zero);
                    }
                }
            }
        }
        if !sign_wrote && d.pre_spaces == 0 {
            num_count += 1;
        }
        Layout {
            number: d.number,
            sign: d.sign,
            pre_spaces: d.pre_spaces,
            desc,
            sign_wrote,
            num_count,
            num_curr: 0,
            num_in: false,
            at: 0,
            last_relevant,
            out: Vec::new(),
        }
    }

    pub(super) fn write(mut self, nodes: &[Node]) -> String {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.extend_from_slice(t.as_bytes()),
                Node::Key(key) => self.key(*key),
            }
        }
        // A digit position past the end of a shortened number wrote a NUL, which ends
        // PostgreSQL's C string there.
        if let Some(end) = self.out.iter().position(|b| *b == 0) {
            self.out.truncate(end);
        }
        String::from_utf8_lossy(&self.out).into_owned()
    }

    fn key(&mut self, key: Key) {
        let fill = self.desc.fill;
        match key {
            Key::Nine | Key::Zero | Key::Dec | Key::D => self.digit(key),
            Key::Comma | Key::G => {
                if self.num_in {
                    self.out.push(b',');
                } else if !fill {
                    self.out.push(b' ');
                }
            }
            // The C locale has no currency symbol: PostgreSQL writes a blank.
            Key::L => self.out.push(b' '),
            Key::Th | Key::ThLower => {
                let skip =
                    self.number.first() == Some(&b'#') || self.sign == b'-' || self.desc.decimal;
                if !skip {
                    let suffix = ordinal(&self.number);
                    let suffix = if key == Key::Th {
                        suffix.to_uppercase()
                    } else {
                        suffix.to_string()
                    };
                    self.out.extend_from_slice(suffix.as_bytes());
                }
            }
            Key::Mi => {
                if self.sign == b'-' {
                    self.out.push(b'-');
                } else if !fill {
                    self.out.push(b' ');
                }
            }
            Key::Pl => {
                if self.sign == b'+' {
                    self.out.push(b'+');
                } else if !fill {
                    self.out.push(b' ');
                }
            }
            Key::Sg => self.out.push(self.sign),
            // Anchored to the digits (S, PR) or no output of their own.
            Key::S
            | Key::Pr
            | Key::Blank
            | Key::C
            | Key::Sp
            | Key::Fm
            | Key::V
            | Key::Eeee
            | Key::Rn
            | Key::RnLower => {}
        }
    }

    fn current(&self) -> u8 {
        self.number.get(self.at).copied().unwrap_or(0)
    }

    fn last_is_point(&self) -> bool {
        self.last_relevant
            .is_some_and(|l| self.number.get(l) == Some(&b'.'))
    }

    /// `0.1` under `9.9`: the leading zero of a number below one is a blank.
    fn predecimal_space(&self) -> bool {
        !self.desc.zero && self.at == 0 && self.number.first() == Some(&b'0') && self.desc.post != 0
    }

    /// A digit position or the decimal point (PostgreSQL's `NUM_numpart_to_char`).
    fn digit(&mut self, key: Key) {
        let d = self.desc;
        self.num_in = false;
        let sign_due =
            self.num_curr >= self.pre_spaces || (d.zero && d.zero_start == self.num_curr);
        if !self.sign_wrote && sign_due && (!self.predecimal_space() || self.last_is_point()) {
            if d.anchored {
                if d.anchor == Anchor::Before {
                    self.out.push(self.sign);
                    self.sign_wrote = true;
                }
            } else if d.bracket {
                self.out.push(if self.sign == b'+' { b' ' } else { b'<' });
                self.sign_wrote = true;
            } else if self.sign == b'+' {
                if !d.fill {
                    self.out.push(b' ');
                }
                self.sign_wrote = true;
            } else if self.sign == b'-' {
                self.out.push(b'-');
                self.sign_wrote = true;
            }
        }
        if self.num_curr < self.pre_spaces && (d.zero_start > self.num_curr || !d.zero) {
            if !d.fill {
                self.out.push(b' ');
            }
        } else if d.zero && self.num_curr < self.pre_spaces && d.zero_start <= self.num_curr {
            self.out.push(b'0');
            self.num_in = true;
        } else {
            if self.current() == b'.' {
                if !self.last_is_point() || d.fill {
                    self.out.push(b'.');
                }
            } else if self.last_relevant.is_some_and(|l| self.at > l) && key != Key::Zero {
                // A trailing zero FM drops.
            } else if self.predecimal_space() {
                if !d.fill {
                    self.out.push(b' ');
                } else if self.last_is_point() {
                    self.out.push(b'0');
                }
            } else {
                self.out.push(self.current());
                self.num_in = true;
            }
            if self.at < self.number.len() {
                self.at += 1;
            }
        }
        let mut end = self.num_count + i32::from(self.pre_spaces > 0) + i32::from(d.decimal);
        if self.last_relevant == Some(self.at) {
            end = self.num_curr;
        }
        if self.num_curr + 1 == end {
            if self.sign_wrote && d.bracket {
                self.out.push(if self.sign == b'+' { b' ' } else { b'>' });
            } else if d.anchored && d.anchor == Anchor::After {
                self.out.push(self.sign);
            }
        }
        self.num_curr += 1;
    }
}

/// The position of the last non-zero decimal (or of the point when all are zero).
fn last_relevant_decimal(number: &[u8]) -> Option<usize> {
    let point = number.iter().position(|b| *b == b'.')?;
    let mut last = point;
    for (i, b) in number.iter().enumerate().skip(point + 1) {
        if *b != b'0' {
            last = i;
        }
    }
    Some(last)
}

/// The English ordinal suffix of the number `digits` ends with.
fn ordinal(digits: &[u8]) -> &'static str {
    let n = digits.len();
    let last = digits.last().copied().unwrap_or(b'0');
    if n > 1 && digits.get(n - 2) == Some(&b'1') {
        return "th";
    }
    match last {
        b'1' => "st",
        b'2' => "nd",
        b'3' => "rd",
        _ => "th",
    }
}
