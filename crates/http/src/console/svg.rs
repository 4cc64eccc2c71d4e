//! Charts as inline SVG drawn on the server: no JavaScript library to vendor, and a page is
//! complete (and testable) as it arrives.

use std::fmt::Write;

use super::html::Html;

/// A sparkline of `values` (oldest first) in a `width`×`height` box; a flat line at the
/// bottom when every value is 0, nothing drawn when there are fewer than 2 values.
pub fn sparkline(h: &mut Html, values: &[f64], width: u32, height: u32) {
    let view = format!("0 0 {width} {height}");
    let w = width.to_string();
    let hh = height.to_string();
    h.el(
        "svg",
        &[
            ("class", "spark"),
            ("viewBox", &view),
            ("width", &w),
            ("height", &hh),
            ("role", "img"),
            ("data-points", &values.len().to_string()),
        ],
        |h| {
            if values.len() < 2 {
                return;
            }
            let points = polyline(values, f64::from(width), f64::from(height), 1.0);
            h.void_pair("polyline", &[("points", &points)]);
        },
    );
}

/// A line chart with its time axis (oldest at the left) and the largest value labelled:
/// `series` are (label, CSS class, values) drawn over the same x positions.
pub fn line_chart(h: &mut Html, series: &[(&str, &'static str, &[f64])], unit: &str, span: &str) {
    const W: f64 = 640.0;
    const H: f64 = 160.0;
    const PAD: f64 = 4.0;
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0_f64, f64::max);
    let n: usize = series.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0);
    h.el("figure", &[("class", "chart")], |h| {
        h.el(
            "svg",
            &[
                ("viewBox", "0 0 640 160"),
                ("preserveAspectRatio", "none"),
                ("role", "img"),
                ("data-points", &n.to_string()),
            ],
            |h| {
                h.void_pair(
                    "line",
                    &[
                        ("x1", "0"),
                        ("y1", "156"),
                        ("x2", "640"),
                        ("y2", "156"),
                        ("class", "axis"),
                    ],
                );
                for (_, class, values) in series {
                    match values.len() {
                        0 => {}
                        // One point (a group's first minute) has no line yet: a dot, so the
                        // chart still shows where the value is.
                        1 => {
                            let (x, y) = polyline_scaled(values, max, W, H, PAD)
                                .split_once(',')
                                .map(|(x, y)| (x.to_string(), y.to_string()))
                                .unwrap_or_default();
                            h.void_pair(
                                "circle",
                                &[("cx", &x), ("cy", &y), ("r", "3"), ("class", class)],
                            );
                        }
                        _ => {
                            let points = polyline_scaled(values, max, W, H, PAD);
                            h.void_pair("polyline", &[("points", &points), ("class", class)]);
                        }
                    }
                }
            },
        );
        h.el("figcaption", &[], |h| {
            for (label, class, values) in series {
                h.el("span", &[("class", class)], |h| {
                    h.text(label);
                    h.text(": ");
                    h.text(&format_rate(values.last().copied().unwrap_or(0.0), unit));
                });
                h.raw(" ");
            }
            h.text(&format!("(peak {}, last {span})", format_rate(max, unit)));
        });
    });
}

impl Html {
    /// An SVG shape: SVG's own elements close with `/>` (they hold no content here).
    fn void_pair(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) {
        self.el(tag, attrs, |_| {});
    }
}

fn polyline(values: &[f64], w: f64, h: f64, pad: f64) -> String {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    polyline_scaled(values, max, w, h, pad)
}

/// `x,y` pairs: x spread over the width, y from the bottom (0) to the top (`max`).
fn polyline_scaled(values: &[f64], max: f64, w: f64, h: f64, pad: f64) -> String {
    let mut out = String::with_capacity(values.len() * 12);
    let step = if values.len() > 1 {
        w / (values.len() - 1) as f64
    } else {
        0.0
    };
    for (i, v) in values.iter().enumerate() {
        let x = i as f64 * step;
        let y = if max > 0.0 {
            h - pad - (v.max(0.0) / max) * (h - 2.0 * pad)
        } else {
            h - pad
        };
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.pop();
    out
}

/// A rate or count with its unit, compact (`1.2k records/s`, `3.4 MiB/s`).
pub fn format_rate(v: f64, unit: &str) -> String {
    if unit == "B/s" {
        return format!("{}/s", super::html::bytes(v));
    }
    let (v, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if suffix.is_empty() && v.fract() == 0.0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1}{suffix} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_points_into_the_box() {
        let mut h = Html::new();
        sparkline(&mut h, &[0.0, 5.0, 10.0], 100, 20);
        let s = h.finish();
        assert!(s.contains("data-points=\"3\""), "{s}");
        // x spread over 100, y from the bottom (19) to the top (1).
        assert!(s.contains("points=\"0.0,19.0 50.0,10.0 100.0,1.0\""), "{s}");
        let mut h = Html::new();
        sparkline(&mut h, &[3.0], 100, 20);
        assert!(!h.finish().contains("polyline"), "one point draws no line");
    }

    #[test]
    fn chart_labels_peak_and_last() {
        let mut h = Html::new();
        line_chart(
            &mut h,
            &[("lag", "a", &[10.0, 2500.0, 40.0])],
            "records",
            "1 h",
        );
        let s = h.finish();
        assert!(s.contains("lag: 40 records"), "{s}");
        assert!(s.contains("peak 2.5k records"), "{s}");
    }

    #[test]
    fn rates() {
        assert_eq!(format_rate(0.0, "records/s"), "0 records/s");
        assert_eq!(format_rate(1234.0, "records/s"), "1.2k records/s");
        assert_eq!(format_rate(2048.0, "B/s"), "2.0 KiB/s");
    }
}
