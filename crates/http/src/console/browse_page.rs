//! The message browser's page: the search form, the honest summary line, a "continue" link
//! with the cursor, and the records (JSON values pretty-printed).

use serde::Deserialize;

use super::browse::{Browse, Filter, Request, Start};
use super::html::{path_segment, Html};
use super::pages::{layout, utc, Section};

/// The browser's query string (the same for the page and `/api/topics/{name}/messages`).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct BrowseQuery {
    /// A partition, or empty for all.
    pub partition: Option<String>,
    /// `beginning`, `offset`, `timestamp` or `end` (the default: the last `at` records).
    pub from: Option<String>,
    /// The offset, the time (ms) or the number of records from the end.
    pub at: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
    pub header: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// Matches shown at most on one page (and by default).
pub const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 100;

fn s(v: &Option<String>) -> &str {
    v.as_deref().map_or("", str::trim)
}

impl BrowseQuery {
    /// The request, or why the query makes none.
    pub fn request(&self) -> Result<Request, String> {
        let partition = match s(&self.partition) {
            "" => None,
            p => Some(
                p.parse::<i32>()
                    .map_err(|_| format!("bad partition {p:?}"))?,
            ),
        };
        let at = || -> Result<i64, String> {
            let a = s(&self.at);
            a.parse::<i64>()
                .map_err(|_| format!("bad position {a:?}: a number is needed"))
        };
        let start = match s(&self.from) {
            "beginning" => Start::Beginning,
            "offset" => Start::Offset(at()?),
            "timestamp" => Start::Timestamp(at()?),
            "" | "end" => Start::End(if s(&self.at).is_empty() { 100 } else { at()? }),
            other => {
                return Err(format!(
                    "bad 'from' {other:?}: beginning, offset, timestamp or end"
                ))
            }
        };
        Ok(Request {
            partition,
            start,
            filter: Filter {
                key: s(&self.key).to_string(),
                value: s(&self.value).to_string(),
                header: s(&self.header).to_string(),
            },
            cursor: Some(s(&self.cursor).to_string()).filter(|c| !c.is_empty()),
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        })
    }

    /// This query's string with `cursor` set (the "continue" link).
    pub fn with_cursor(&self, cursor: &str) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("key", &self.key),
            ("value", &self.value),
            ("header", &self.header),
        ] {
            if !s(v).is_empty() {
                parts.push(format!("{k}={}", path_segment(s(v))));
            }
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        parts.push(format!("cursor={}", path_segment(cursor)));
        parts.join("&")
    }
}

fn form(h: &mut Html, topic: &str, q: &BrowseQuery, partitions: i32) {
    let action = format!("/topics/{}/messages", path_segment(topic));
    h.el(
        "form",
        &[("method", "get"), ("action", &action), ("class", "browse")],
        |h| {
            h.el("label", &[], |h| {
                h.text("Partition ");
                h.el("select", &[("name", "partition")], |h| {
                    let chosen = s(&q.partition);
                    let opt = |h: &mut Html, v: &str, label: &str| {
                        if v == chosen {
                            h.el("option", &[("value", v), ("selected", "selected")], |h| {
                                h.text(label)
                            });
                        } else {
                            h.el("option", &[("value", v)], |h| h.text(label));
                        }
                    };
                    opt(h, "", "all");
                    for p in 0..partitions.min(1000) {
                        let v = p.to_string();
                        opt(h, &v, &v);
                    }
                });
            });
            h.el("label", &[], |h| {
                h.text(" from ");
                h.el("select", &[("name", "from")], |h| {
                    let chosen = match s(&q.from) {
                        "" => "end",
                        f => f,
                    };
                    for (v, label) in [
                        ("end", "last N records"),
                        ("beginning", "beginning"),
                        ("offset", "offset"),
                        ("timestamp", "timestamp (ms)"),
                    ] {
                        if v == chosen {
                            h.el("option", &[("value", v), ("selected", "selected")], |h| {
                                h.text(label)
                            });
                        } else {
                            h.el("option", &[("value", v)], |h| h.text(label));
                        }
                    }
                });
            });
            for (name, label, value) in [
                ("at", "N / offset / ms", s(&q.at)),
                ("key", "key contains", s(&q.key)),
                ("value", "value contains", s(&q.value)),
                ("header", "header name[=text]", s(&q.header)),
            ] {
                h.void(
                    "input",
                    &[("name", name), ("placeholder", label), ("value", value)],
                );
            }
            h.text_el("button", &[("type", "submit"), ("id", "search")], "Search");
        },
    );
}

pub fn page(b: &Browse, q: &BrowseQuery, partitions: i32) -> String {
    let qs = q.with_cursor(s(&q.cursor));
    let api = format!("/api/topics/{}/messages?{qs}", path_segment(&b.topic));
    layout(
        &format!("{}: messages", b.topic),
        Section::Topics,
        &api,
        |h| {
            h.el("p", &[], |h| {
                h.link(&format!("/topics/{}", path_segment(&b.topic)), "← topic");
            });
            form(h, &b.topic, q, partitions);
            h.el("p", &[("id", "scan-summary"), ("class", "note")], |h| {
                h.text(&b.summary);
                if let Some(c) = &b.cursor {
                    h.raw(" · ");
                    let href = format!(
                        "/topics/{}/messages?{}",
                        path_segment(&b.topic),
                        q.with_cursor(c)
                    );
                    h.el("a", &[("href", &href), ("id", "continue")], |h| {
                        h.text("continue")
                    });
                }
            });
            let mut filters = Vec::new();
            for (k, v) in [("key", &q.key), ("value", &q.value), ("header", &q.header)] {
                if !s(v).is_empty() {
                    filters.push(format!("{k}={}", path_segment(s(v))));
                }
            }
            super::forms::tail_section(h, &b.topic, s(&q.partition), &filters.join("&"));
            h.text_el("h2", &[], "Records");
            h.el("table", &[("id", "messages")], |h| {
                h.el("thead", &[], |h| {
                    h.el("tr", &[], |h| {
                        for c in [
                            "Partition",
                            "Offset",
                            "Timestamp",
                            "Key",
                            "Headers",
                            "Value",
                        ] {
                            h.text_el("th", &[], c);
                        }
                    });
                });
                h.el("tbody", &[], |h| {
                    for m in &b.messages {
                        h.el("tr", &[], |h| {
                            h.el("td", &[("class", "num")], |h| h.num(m.partition));
                            h.el("td", &[("class", "num")], |h| h.num(m.offset));
                            h.text_el("td", &[], &utc(m.timestamp_ms));
                            h.text_el(
                                "td",
                                &[("class", "key")],
                                m.key.as_deref().unwrap_or("(null)"),
                            );
                            let headers: Vec<String> = m
                                .headers
                                .iter()
                                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("(null)")))
                                .collect();
                            h.text_el("td", &[], &headers.join(", "));
                            h.el("td", &[], |h| {
                                let class = if m.value_json { "json" } else { "" };
                                h.text_el(
                                    "pre",
                                    &[("class", class)],
                                    m.value.as_deref().unwrap_or("(null)"),
                                );
                                if m.truncated {
                                    h.text_el("span", &[("class", "note")], "(cut at 16 KiB)");
                                }
                            });
                        });
                    }
                });
            });
        },
    )
}
