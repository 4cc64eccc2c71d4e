//! The registry: named families in registration order, rendered in the Prometheus text
//! exposition format 0.0.4.

use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use crate::family::Family;
use crate::metric::{Counter, Gauge, Histogram};

/// The `Content-Type` of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Gauges computed at scrape time by a callback (partition counts, log sizes, free disk):
/// values the broker already holds, read rather than mirrored.
pub struct GaugeSink<'a> {
    label_names: &'static [&'static str],
    rows: &'a mut Vec<(Vec<String>, f64)>,
}

impl GaugeSink<'_> {
    /// One series: `values` in the order of the family's label names.
    pub fn push(&mut self, values: &[&str], v: f64) {
        debug_assert_eq!(values.len(), self.label_names.len(), "label count");
        self.rows
            .push((values.iter().map(|s| s.to_string()).collect(), v));
    }
}

type GaugeFn = Box<dyn Fn(&mut GaugeSink<'_>) + Send + Sync>;

enum Source {
    Counters(Arc<Family<Counter>>),
    Gauges(Arc<Family<Gauge>>),
    Histograms(Arc<Family<Histogram>>),
    StaticHistogram(&'static Histogram),
    GaugeFn(&'static [&'static str], GaugeFn),
}

struct Entry {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    source: Source,
}

/// Every metric of a process (or of one broker, in tests running several).
pub struct Registry {
    entries: RwLock<Vec<Entry>>,
    overflow: Arc<Family<Counter>>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new()
    }
}

const OVERFLOW_NAME: &str = "weir_metrics_label_overflow_total";

impl Registry {
    pub fn new() -> Registry {
        let overflow = Arc::new(Family::new(&["metric"], None, Counter::new, None));
        let registry = Registry {
            entries: RwLock::new(Vec::new()),
            overflow: overflow.clone(),
        };
        registry.push(
            OVERFLOW_NAME,
            "Label values refused by a family's cap (their series went to the \"_other\" value).",
            Kind::Counter,
            Source::Counters(overflow),
        );
        registry
    }

    fn push(&self, name: &'static str, help: &'static str, kind: Kind, source: Source) {
        debug_assert!(valid_name(name), "metric name {name}");
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        debug_assert!(
            entries.iter().all(|e| e.name != name),
            "metric {name} registered twice"
        );
        entries.push(Entry {
            name,
            help,
            kind,
            source,
        });
    }

    fn overflow_for(&self, name: &'static str, cap: Option<usize>) -> Option<Arc<Counter>> {
        cap.map(|_| self.overflow.with(&[name]))
    }

    /// A counter family; `cap` bounds the distinct values of its first label.
    pub fn counters(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        cap: Option<usize>,
    ) -> Arc<Family<Counter>> {
        let f = Arc::new(Family::new(
            labels,
            cap,
            Counter::new,
            self.overflow_for(name, cap),
        ));
        self.push(name, help, Kind::Counter, Source::Counters(f.clone()));
        f
    }

    /// A gauge family; `cap` bounds the distinct values of its first label.
    pub fn gauges(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        cap: Option<usize>,
    ) -> Arc<Family<Gauge>> {
        let f = Arc::new(Family::new(
            labels,
            cap,
            Gauge::new,
            self.overflow_for(name, cap),
        ));
        self.push(name, help, Kind::Gauge, Source::Gauges(f.clone()));
        f
    }

    /// A latency histogram family over [`crate::LATENCY_SECONDS`].
    pub fn histograms(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<Family<Histogram>> {
        let f = Arc::new(Family::new(labels, None, Histogram::latency, None));
        self.push(name, help, Kind::Histogram, Source::Histograms(f.clone()));
        f
    }

    /// An unlabelled counter.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<Counter> {
        self.counters(name, help, &[], None).with(&[])
    }

    /// An unlabelled gauge.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Arc<Gauge> {
        self.gauges(name, help, &[], None).with(&[])
    }

    /// A histogram that lives in a `static` (one a lower layer updates without knowing about
    /// any registry, the storage's fsync latency).
    pub fn static_histogram(&self, name: &'static str, help: &'static str, h: &'static Histogram) {
        self.push(name, help, Kind::Histogram, Source::StaticHistogram(h));
    }

    /// Gauges computed by `f` at each scrape. `f` must be cheap: it runs on the scrape.
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        f: impl Fn(&mut GaugeSink<'_>) + Send + Sync + 'static,
    ) {
        self.push(
            name,
            help,
            Kind::Gauge,
            Source::GaugeFn(labels, Box::new(f)),
        );
    }

    /// The exposition of every metric, Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        for e in entries.iter() {
            let _ = writeln!(out, "# HELP {} {}", e.name, escape_help(e.help));
            let _ = writeln!(out, "# TYPE {} {}", e.name, e.kind.as_str());
            match &e.source {
                Source::Counters(f) => {
                    for (values, c) in f.snapshot() {
                        sample(
                            &mut out,
                            e.name,
                            f.label_names(),
                            &values,
                            None,
                            c.get() as f64,
                        );
                    }
                }
                Source::Gauges(f) => {
                    for (values, g) in f.snapshot() {
                        sample(&mut out, e.name, f.label_names(), &values, None, g.get());
                    }
                }
                Source::Histograms(f) => {
                    for (values, h) in f.snapshot() {
                        histogram(&mut out, e.name, f.label_names(), &values, &h);
                    }
                }
                Source::StaticHistogram(h) => histogram(&mut out, e.name, &[], &[], h),
                Source::GaugeFn(labels, f) => {
                    let mut rows = Vec::new();
                    f(&mut GaugeSink {
                        label_names: labels,
                        rows: &mut rows,
                    });
                    for (values, v) in rows {
                        sample(&mut out, e.name, labels, &values, None, v);
                    }
                }
            }
        }
        out
    }
}

fn histogram(out: &mut String, name: &str, labels: &[&str], values: &[String], h: &Histogram) {
    let (cumulative, total) = h.cumulative();
    let bucket = format!("{name}_bucket");
    for (bound, n) in h.bounds().iter().zip(cumulative) {
        let le = format_value(*bound);
        sample(out, &bucket, labels, values, Some(&le), n as f64);
    }
    sample(out, &bucket, labels, values, Some("+Inf"), total as f64);
    sample(
        out,
        &format!("{name}_sum"),
        labels,
        values,
        None,
        h.sum_seconds(),
    );
    sample(
        out,
        &format!("{name}_count"),
        labels,
        values,
        None,
        total as f64,
    );
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[&str],
    values: &[String],
    le: Option<&str>,
    v: f64,
) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        let pairs = labels
            .iter()
            .zip(values.iter().map(String::as_str))
            .chain(le.map(|le| (&"le", le)));
        for (k, val) in pairs {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_into(out, val);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_value(v));
    out.push('\n');
}

/// A sample value as the format wants it: `+Inf`, `-Inf`, `NaN`, integers without a fraction.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e15 || v.abs() < 1e-6 {
        // Plain notation would spell out hundreds of digits.
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and line feed (not quotes).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let r = Registry::new();
        let requests = r.counters("weir_requests_total", "Requests.", &["api"], None);
        requests.with(&["Produce"]).add(3);
        requests.with(&["Fetch"]).inc();
        r.gauge("weir_connections", "Open connections.").set(2.0);
        let d = r.histograms("weir_request_duration_seconds", "Latency.", &["api"]);
        d.with(&["Produce"]).observe(Duration::from_micros(300));
        r.gauge_fn("weir_partitions", "Partitions.", &["topic"], |s| {
            s.push(&["t"], 4.0)
        });
        let text = r.render();
        assert!(text.contains("# TYPE weir_requests_total counter\n"));
        assert!(text.contains("weir_requests_total{api=\"Fetch\"} 1\n"));
        assert!(text.contains("weir_requests_total{api=\"Produce\"} 3\n"));
        assert!(text.contains("weir_connections 2\n"));
        assert!(text
            .contains("weir_request_duration_seconds_bucket{api=\"Produce\",le=\"0.00025\"} 0\n"));
        assert!(text
            .contains("weir_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1\n"));
        assert!(
            text.contains("weir_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 1\n")
        );
        assert!(text.contains("weir_request_duration_seconds_sum{api=\"Produce\"} 0.0003\n"));
        assert!(text.contains("weir_request_duration_seconds_count{api=\"Produce\"} 1\n"));
        assert!(text.contains("weir_partitions{topic=\"t\"} 4\n"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn escapes_label_values_and_help() {
        let r = Registry::new();
        let f = r.counters(
            "weir_x_total",
            "A \\ help\nline with \"quotes\".",
            &["topic"],
            None,
        );
        f.with(&["a\"b\\c\nd"]).inc();
        let text = r.render();
        assert!(
            text.contains("weir_x_total{topic=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# HELP weir_x_total A \\\\ help\\nline with \"quotes\".\n"));
    }

    #[test]
    fn overflow_is_counted_per_metric_and_exposed() {
        let r = Registry::new();
        let f = r.counters(
            "weir_topic_produced_records_total",
            "P.",
            &["topic"],
            Some(1),
        );
        f.with(&["a"]).inc();
        f.with(&["b"]).inc();
        let text = r.render();
        assert!(text.contains(
            "weir_metrics_label_overflow_total{metric=\"weir_topic_produced_records_total\"} 1\n"
        ));
        assert!(text.contains("weir_topic_produced_records_total{topic=\"_other\"} 1\n"));
        f.remove_first("a");
        assert!(!r.render().contains("topic=\"a\""));
    }

    #[test]
    fn special_values() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(12.0), "12");
        assert_eq!(format_value(-3.0), "-3");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(1e300), "1e300");
        assert_eq!(format_value(1.5e-9), "1.5e-9");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("weir_requests_total"));
        assert!(!valid_name("9lives"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }
}
