//! The markdown tables bench prints.

use std::time::Duration;

use super::{latency, restart, Limits, Measured, Row, MB};

pub(super) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

pub(super) fn mb(bytes_per_second: f64) -> String {
    format!("{:.0}", bytes_per_second / MB)
}

/// 1234567 as "1,234,567".
pub(super) fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn print_table(rows: &[Row]) {
    println!("| scenario | records/s | MB/s | limit (MB/s) | ratio to limit |");
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        let rate = row.measured.bytes_per_second();
        println!(
            "| {} | {} | {:.1} | {} | {:.3} |",
            row.name,
            grouped(row.measured.records_per_second()),
            rate / MB,
            mb(row.limit),
            rate / row.limit,
        );
    }
}

/// Fixed-rate end-to-end latency, beside the latency of one small fdatasync (an acks=all
/// answer waits for at least one).
pub(super) fn print_latency_table(rows: &[latency::Latency], limits: &Limits) {
    println!(
        "| end-to-end latency, 1 KiB, acks=all, 1 partition | records/s | p50 ms | p99 ms | \
         p99.9 ms | max ms | limit: fdatasync ms | p99 / 5 ms target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| at {} records/s ({} records) | {} | {} | {} | {} | {} | {} | {:.2} |",
            grouped(r.target_rate as f64),
            grouped(r.records as f64),
            grouped(r.achieved_rate),
            ms(r.p50),
            ms(r.p99),
            ms(r.p999),
            ms(r.max),
            ms(limits.fdatasync_latency),
            r.p99.as_secs_f64() / 0.005,
        );
    }
}

/// Start-up time (spawn to first ApiVersions answer) and resident memory after start.
pub(super) fn print_start_table(rows: &[restart::StartRow]) {
    println!(
        "| start-up | seconds | limit (s) | ratio to limit | ratio to target | RSS MB | RSS / 500 MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let secs = r.start.as_secs_f64();
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        println!(
            "| {} | {:.3} | {} | {} | {} | {} | {} |",
            r.name,
            secs,
            opt(r.limit.map(|l| format!("{:.3}", l.as_secs_f64()))),
            opt(r
                .limit
                .map(|l| format!("{:.2}", secs / l.as_secs_f64().max(1e-9)))),
            opt(r.target.map(|t| format!("{:.2}", secs / t.as_secs_f64()))),
            opt(r.rss_bytes.map(|b| format!("{:.1}", b as f64 / MB))),
            opt(r
                .rss_bytes
                .filter(|_| r.target.is_some())
                .map(|b| format!("{:.2}", b as f64 / 500e6))),
        );
    }
}

/// Where the time went: CPU of each process per wall second, and the client-only costs.
pub(super) fn print_cpu_table(rows: &[Row], encode_rows: &[Row]) {
    let cores = |cpu: Option<f64>, m: &Measured| {
        cpu.map_or("-".to_owned(), |c| {
            format!("{:.2}", c / m.elapsed.as_secs_f64().max(1e-9))
        })
    };
    println!(
        "| scenario | seconds | broker CPU (cores) | bench CPU (cores) | client decode share |"
    );
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        let m = &row.measured;
        let decode = if m.decode.is_zero() {
            "-".to_owned()
        } else {
            format!("{:.2}", m.decode.as_secs_f64() / m.elapsed.as_secs_f64())
        };
        println!(
            "| {} | {:.2} | {} | {} | {} |",
            row.name,
            m.elapsed.as_secs_f64(),
            cores(m.broker_cpu, m),
            cores(m.client_cpu, m),
            decode,
        );
    }
    println!();
    println!("client CPU alone, no broker (for scale; not part of the produce figures):\n");
    println!("| work | records/s | MB/s |");
    println!("|---|---:|---:|");
    for row in encode_rows {
        println!(
            "| {} | {} | {:.1} |",
            row.name,
            grouped(row.measured.records_per_second()),
            row.measured.bytes_per_second() / MB,
        );
    }
    for row in rows.iter().filter(|r| !r.measured.decode.is_zero()) {
        let m = &row.measured;
        let secs = m.decode.as_secs_f64().max(1e-9);
        println!(
            "| decode ({}) | {} | {:.1} |",
            row.name,
            grouped(m.records as f64 / secs),
            m.value_bytes as f64 / secs / MB,
        );
    }
}
