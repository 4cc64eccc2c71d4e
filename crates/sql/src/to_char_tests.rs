//! `to_char` against PostgreSQL's documented outputs (the "Formatting Functions" and
//! "Template Patterns for Date/Time Formatting" tables and their usage notes), then through
//! a session, as SQL.

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::StringArray;

use super::*;

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("timestamp")
}

fn fmt(ts: &str, template: &str) -> String {
    Template::parse(template).format(&Stamp::new(at(ts), None))
}

/// `timestamp '2002-04-20 17:31:12.66'`, PostgreSQL's example value (a Saturday).
const TS: &str = "2002-04-20 17:31:12.66";

#[test]
fn the_documented_examples() {
    assert_eq!(fmt(TS, "HH12:MI:SS"), "05:31:12");
    // Table "to_char Examples", at a Tuesday the 6th, 05:39:18.
    let tuesday = "2005-12-06 05:39:18";
    assert_eq!(
        fmt(tuesday, "Day, DD  HH12:MI:SS"),
        "Tuesday  , 06  05:39:18"
    );
    assert_eq!(
        fmt(tuesday, "FMDay, FMDD  HH12:MI:SS"),
        "Tuesday, 6  05:39:18"
    );
    assert_eq!(fmt(TS, "YYYY-MM-DD"), "2002-04-20");
    assert_eq!(
        fmt(TS, "YYYY-MM-DD HH24:MI:SS.MS"),
        "2002-04-20 17:31:12.660"
    );
}

#[test]
fn years_centuries_and_eras() {
    assert_eq!(fmt(TS, "Y,YYY YYY YY Y"), "2,002 002 02 2");
    assert_eq!(fmt("2000-12-31 00:00:00", "CC"), "20");
    assert_eq!(
        fmt("2001-01-01 00:00:00", "CC"),
        "21",
        "the 21st century starts in 2001"
    );
    assert_eq!(fmt(TS, "AD ad A.D. BC b.c."), "AD ad A.D. AD a.d.");
    // chrono's year 0 is 1 BC, PostgreSQL's years skip 0.
    assert_eq!(fmt("0000-03-01 00:00:00", "YYYY BC"), "0001 BC");
    assert_eq!(fmt("0044-03-15 00:00:00", "FMYYYY"), "44");
    assert_eq!(fmt("0044-03-15 00:00:00", "YYYY"), "0044");
}

#[test]
fn months_days_and_weeks() {
    assert_eq!(
        fmt(TS, "Month|MONTH|month|FMMonth"),
        "April    |APRIL    |april    |April"
    );
    assert_eq!(fmt(TS, "Mon MON mon MM"), "Apr APR apr 04");
    assert_eq!(fmt(TS, "RM|rm|FMRM"), "IV  |iv  |IV");
    assert_eq!(fmt(TS, "Q"), "2");
    assert_eq!(fmt(TS, "Day|DY|dy|D|ID"), "Saturday |SAT|sat|7|6");
    assert_eq!(fmt(TS, "DDD DD"), "110 20");
    assert_eq!(fmt(TS, "W WW"), "3 16");
    // ISO: 2006-10-19 is day 4 of week 42 of ISO year 2006 (the to_date example), and
    // 2006-01-01 belongs to ISO year 2005.
    assert_eq!(fmt("2006-10-19 00:00:00", "IYYY-IW-ID"), "2006-42-4");
    assert_eq!(
        fmt("2006-01-01 00:00:00", "IYYY-IW-ID IDDD"),
        "2005-52-7 364"
    );
    assert_eq!(fmt("2000-01-01 00:00:00", "J"), "2451545");
}

#[test]
fn times_and_fractions() {
    assert_eq!(fmt(TS, "HH HH12 HH24 MI SS"), "05 05 17 31 12");
    assert_eq!(fmt("2002-04-20 00:05:00", "HH12 AM"), "12 AM");
    assert_eq!(fmt(TS, "AM am A.M. p.m."), "PM pm P.M. p.m.");
    assert_eq!(fmt(TS, "MS US FF1 FF2 FF6"), "660 660000 6 66 660000");
    assert_eq!(fmt(TS, "SSSS SSSSS"), "63072 63072");
}

#[test]
fn modifiers_quotes_and_case() {
    assert_eq!(fmt(TS, "DDTH DDth FMDDth"), "20TH 20th 20th");
    for (day, want) in [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th")] {
        let ts = format!("2002-04-{day:02} 00:00:00");
        assert_eq!(fmt(&ts, "FMDDth"), want);
    }
    assert_eq!(fmt("2002-04-12 00:00:00", "FMDDth"), "12th");
    assert_eq!(fmt("2002-04-13 00:00:00", "FMDDth"), "13th");
    assert_eq!(fmt("2002-04-22 00:00:00", "FMDDth"), "22nd");
    assert_eq!(
        fmt(TS, "\"Year\" YYYY"),
        "Year 2002",
        "quoted text is copied"
    );
    assert_eq!(fmt(TS, "\\\"YYYY Month\\\""), "\"2002 April    \"");
    assert_eq!(fmt(TS, "\"a \\\"q\\\"\" MM"), "a \"q\" 04");
    // Exact-case keywords: `mm` is the month, `Mm` is text, `Yyyy` is `Y` then `yyy`.
    assert_eq!(fmt(TS, "HH:mm"), "05:04");
    assert_eq!(fmt(TS, "hh24:mi"), "17:31");
    assert_eq!(fmt(TS, "Mm"), "Mm");
    assert_eq!(fmt(TS, "Yyyy"), "2002");
    assert_eq!(fmt(TS, "FXYYYY TMMonth"), "2002 April    ");
    assert_eq!(fmt(TS, "at 1 é"), "at 1 é");
}

#[test]
fn time_zones() {
    assert_eq!(fmt(TS, "[TZ]OF"), "[]+00", "a timestamp without time zone");
    let utc = chrono::Utc.from_utc_datetime(&at(TS));
    let stamp = |o: i32| {
        let z = FixedOffset::east_opt(o).expect("offset");
        Stamp::zoned(&utc.with_timezone(&z))
    };
    let t = Template::parse("HH24:MI TZ tz OF TZH:TZM");
    assert_eq!(t.format(&stamp(0)), "17:31 UTC utc +00 +00:00");
    assert_eq!(
        t.format(&stamp(19_800)),
        "23:01 +05:30 +05:30 +05:30 +05:30"
    );
    assert_eq!(t.format(&stamp(-3 * 3600)), "14:31 -03 -03 -03 -03:00");
    assert_eq!(
        Template::parse("YYYY-MM-DD HH24").format(&midnight(
            NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")
        )),
        "2024-02-29 00"
    );
}

async fn sql(query: &str) -> DfResult<Vec<Option<String>>> {
    let ctx = SessionContext::new();
    register(&ctx);
    let batches = ctx.sql(query).await?.collect().await?;
    let mut out = Vec::new();
    for b in batches {
        let col = b.column(0);
        let Some(s) = col.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("not text: {}", col.data_type());
        };
        out.extend(s.iter().map(|v| v.map(str::to_string)));
    }
    Ok(out)
}

#[tokio::test]
async fn in_sql_it_replaces_datafusions_for_timestamps_dates_and_columns() {
    let one = |s: &str| vec![Some(s.to_string())];
    assert_eq!(
        sql("SELECT to_char(TIMESTAMP '2002-04-20 17:31:12.66', 'YYYY-MM-DD HH24:MI:SS.MS')")
            .await
            .expect("timestamp"),
        one("2002-04-20 17:31:12.660")
    );
    assert_eq!(
        sql("SELECT to_char(DATE '2002-04-20', 'FMDay FMDDth Mon YYYY')")
            .await
            .expect("date"),
        one("Saturday 20th Apr 2002")
    );
    assert_eq!(
        // 1019323872 s: 2002-04-20 17:31:12 UTC.
        sql("SELECT to_char(arrow_cast(1019323872, \
             'Timestamp(Second, Some(\"+05:30\"))'), 'HH24:MI OF')")
        .await
        .expect("zoned"),
        one("23:01 +05:30"),
        "a zoned timestamp is formatted in its zone"
    );
    let column = sql("SELECT to_char(t, f) FROM (VALUES \
         (TIMESTAMP '2002-04-20 17:31:12', 'YYYY'), \
         (TIMESTAMP '2003-05-21 01:02:03', 'HH24:MI'), \
         (NULL, 'YYYY'), \
         (TIMESTAMP '2004-06-22 00:00:00', NULL)) AS v(t, f)")
    .await
    .expect("columns");
    assert_eq!(
        column,
        vec![Some("2002".into()), Some("01:02".into()), None, None]
    );
    // DataFusion's chrono patterns stay under their other name.
    assert_eq!(
        sql("SELECT date_format(DATE '2002-04-20', '%Y/%m')")
            .await
            .expect("date_format"),
        one("2002/04")
    );
    // Numbers too (`to_char_number`), which DataFusion's to_char refused.
    assert_eq!(
        sql("SELECT to_char(125, '999')").await.expect("a number"),
        one(" 125")
    );
}
