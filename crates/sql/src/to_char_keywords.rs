//! `to_char`'s template keywords, each in every spelling PostgreSQL accepts (exact case:
//! `MM` and `mm` are the month, `Mm` is text), and the prefixes that modify a field.

use super::{Case, Field};

/// The keywords, each in every spelling PostgreSQL accepts; longest first at parse.
pub(super) const KEYWORDS: &[(&str, Field)] = &[
    ("Y,YYY", Field::YearComma),
    ("y,yyy", Field::YearComma),
    ("YYYY", Field::Year(4)),
    ("yyyy", Field::Year(4)),
    ("YYY", Field::Year(3)),
    ("yyy", Field::Year(3)),
    ("YY", Field::Year(2)),
    ("yy", Field::Year(2)),
    ("Y", Field::Year(1)),
    ("y", Field::Year(1)),
    ("IYYY", Field::IsoYear(4)),
    ("iyyy", Field::IsoYear(4)),
    ("IYY", Field::IsoYear(3)),
    ("iyy", Field::IsoYear(3)),
    ("IY", Field::IsoYear(2)),
    ("iy", Field::IsoYear(2)),
    ("I", Field::IsoYear(1)),
    ("i", Field::IsoYear(1)),
    (
        "A.D.",
        Field::Era {
            lower: false,
            dots: true,
        },
    ),
    (
        "a.d.",
        Field::Era {
            lower: true,
            dots: true,
        },
    ),
    (
        "B.C.",
        Field::Era {
            lower: false,
            dots: true,
        },
    ),
    (
        "b.c.",
        Field::Era {
            lower: true,
            dots: true,
        },
    ),
    (
        "AD",
        Field::Era {
            lower: false,
            dots: false,
        },
    ),
    (
        "ad",
        Field::Era {
            lower: true,
            dots: false,
        },
    ),
    (
        "BC",
        Field::Era {
            lower: false,
            dots: false,
        },
    ),
    (
        "bc",
        Field::Era {
            lower: true,
            dots: false,
        },
    ),
    ("CC", Field::Century),
    ("cc", Field::Century),
    ("MM", Field::Month),
    ("mm", Field::Month),
    ("MONTH", Field::MonthName(Case::Upper)),
    ("Month", Field::MonthName(Case::Capital)),
    ("month", Field::MonthName(Case::Lower)),
    ("MON", Field::MonthAbbrev(Case::Upper)),
    ("Mon", Field::MonthAbbrev(Case::Capital)),
    ("mon", Field::MonthAbbrev(Case::Lower)),
    ("RM", Field::Roman(Case::Upper)),
    ("rm", Field::Roman(Case::Lower)),
    ("Q", Field::Quarter),
    ("q", Field::Quarter),
    ("DDD", Field::DayOfYear),
    ("ddd", Field::DayOfYear),
    ("DD", Field::DayOfMonth),
    ("dd", Field::DayOfMonth),
    ("IDDD", Field::IsoDayOfYear),
    ("iddd", Field::IsoDayOfYear),
    ("ID", Field::IsoDayOfWeek),
    ("id", Field::IsoDayOfWeek),
    ("DAY", Field::DayName(Case::Upper)),
    ("Day", Field::DayName(Case::Capital)),
    ("day", Field::DayName(Case::Lower)),
    ("DY", Field::DayAbbrev(Case::Upper)),
    ("Dy", Field::DayAbbrev(Case::Capital)),
    ("dy", Field::DayAbbrev(Case::Lower)),
    ("D", Field::DayOfWeek),
    ("d", Field::DayOfWeek),
    ("WW", Field::WeekOfYear),
    ("ww", Field::WeekOfYear),
    ("W", Field::WeekOfMonth),
    ("w", Field::WeekOfMonth),
    ("IW", Field::IsoWeek),
    ("iw", Field::IsoWeek),
    ("J", Field::Julian),
    ("j", Field::Julian),
    ("HH24", Field::Hour24),
    ("hh24", Field::Hour24),
    ("HH12", Field::Hour12),
    ("hh12", Field::Hour12),
    ("HH", Field::Hour12),
    ("hh", Field::Hour12),
    ("MI", Field::Minute),
    ("mi", Field::Minute),
    ("SSSSS", Field::SecondsOfDay),
    ("sssss", Field::SecondsOfDay),
    ("SSSS", Field::SecondsOfDay),
    ("ssss", Field::SecondsOfDay),
    ("SS", Field::Second),
    ("ss", Field::Second),
    ("MS", Field::Millis),
    ("ms", Field::Millis),
    ("US", Field::Micros),
    ("us", Field::Micros),
    ("FF1", Field::Fraction(1)),
    ("ff1", Field::Fraction(1)),
    ("FF2", Field::Fraction(2)),
    ("ff2", Field::Fraction(2)),
    ("FF3", Field::Fraction(3)),
    ("ff3", Field::Fraction(3)),
    ("FF4", Field::Fraction(4)),
    ("ff4", Field::Fraction(4)),
    ("FF5", Field::Fraction(5)),
    ("ff5", Field::Fraction(5)),
    ("FF6", Field::Fraction(6)),
    ("ff6", Field::Fraction(6)),
    (
        "A.M.",
        Field::Meridiem {
            lower: false,
            dots: true,
        },
    ),
    (
        "a.m.",
        Field::Meridiem {
            lower: true,
            dots: true,
        },
    ),
    (
        "P.M.",
        Field::Meridiem {
            lower: false,
            dots: true,
        },
    ),
    (
        "p.m.",
        Field::Meridiem {
            lower: true,
            dots: true,
        },
    ),
    (
        "AM",
        Field::Meridiem {
            lower: false,
            dots: false,
        },
    ),
    (
        "am",
        Field::Meridiem {
            lower: true,
            dots: false,
        },
    ),
    (
        "PM",
        Field::Meridiem {
            lower: false,
            dots: false,
        },
    ),
    (
        "pm",
        Field::Meridiem {
            lower: true,
            dots: false,
        },
    ),
    ("TZH", Field::OffsetHours),
    ("tzh", Field::OffsetHours),
    ("TZM", Field::OffsetMinutes),
    ("tzm", Field::OffsetMinutes),
    ("TZ", Field::Zone { lower: false }),
    ("tz", Field::Zone { lower: true }),
    ("OF", Field::Offset),
    ("of", Field::Offset),
];

/// Prefixes that modify the next field: fill mode, and the two without effect here.
pub(super) const PREFIXES: &[(&str, bool)] = &[
    ("FM", true),
    ("fm", true),
    ("FX", false),
    ("fx", false),
    ("TM", false),
    ("tm", false),
];
