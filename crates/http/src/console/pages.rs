//! The console's HTML, rendered from the structs of [`super::data`] (the same ones the JSON
//! twins serialize).

use super::data::{GroupDetail, GroupList, Overview, Page, TopicDetail, TopicList, Transactions};
use super::html::{bytes, path_segment, Html};
use super::svg::{format_rate, line_chart, sparkline};

/// Which section the navigation marks as current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Topics,
    Groups,
    Transactions,
    Pipelines,
}

const NAV: [(Section, &str, &str); 5] = [
    (Section::Overview, "/", "Overview"),
    (Section::Topics, "/topics", "Topics"),
    (Section::Groups, "/groups", "Consumer groups"),
    (Section::Transactions, "/transactions", "Transactions"),
    (Section::Pipelines, "/pipelines", "Pipelines"),
];

/// The page around `body`: head, the one stylesheet, navigation.
pub fn layout(title: &str, section: Section, api: &str, body: impl FnOnce(&mut Html)) -> String {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>");
    h.el("html", &[("lang", "en")], |h| {
        h.el("head", &[], |h| {
            h.void("meta", &[("charset", "utf-8")]);
            h.void(
                "meta",
                &[
                    ("name", "viewport"),
                    ("content", "width=device-width, initial-scale=1"),
                ],
            );
            h.text_el("title", &[], &format!("{title} · Weir"));
            h.void(
                "link",
                &[("rel", "stylesheet"), ("href", "/assets/console.css")],
            );
        });
        h.el("body", &[], |h| {
            h.el("nav", &[], |h| {
                h.text_el("span", &[("class", "brand")], "Weir");
                for (s, href, label) in NAV {
                    let class = if s == section { "current" } else { "" };
                    h.el("a", &[("href", href), ("class", class)], |h| h.text(label));
                }
                crate::auth::session_bar(h);
            });
            h.el("main", &[], |h| {
                h.el("header", &[], |h| {
                    h.text_el("h1", &[], title);
                    h.el("a", &[("class", "api"), ("href", api)], |h| h.text("JSON"));
                });
                body(h);
            });
        });
    });
    h.finish()
}

/// A table: header cells, then `rows` writes the `<tr>`s.
fn table(h: &mut Html, id: &str, heads: &[&str], rows: impl FnOnce(&mut Html)) {
    h.el("table", &[("id", id)], |h| {
        h.el("thead", &[], |h| {
            h.el("tr", &[], |h| {
                for c in heads {
                    h.text_el("th", &[], c);
                }
            });
        });
        h.el("tbody", &[], rows);
    });
}

fn td(h: &mut Html, text: &str) {
    h.text_el("td", &[], text);
}

fn td_num(h: &mut Html, n: impl std::fmt::Display) {
    h.el("td", &[("class", "num")], |h| h.num(n));
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Links to the other pages of a list, keeping the filter.
fn pager(h: &mut Html, base: &str, page: &Page, filter: &str) {
    if page.pages <= 1 {
        return;
    }
    let href = |n: usize| {
        let mut s = format!("{base}?page={n}");
        if !filter.is_empty() {
            s.push_str("&q=");
            s.push_str(&path_segment(filter));
        }
        s
    };
    h.el("p", &[("class", "pager")], |h| {
        if page.page > 1 {
            h.link(&href(page.page - 1), "← previous");
            h.raw(" ");
        }
        h.text(&format!(
            "page {} of {} ({} rows)",
            page.page, page.pages, page.total
        ));
        if page.page < page.pages {
            h.raw(" ");
            h.link(&href(page.page + 1), "next →");
        }
    });
}

fn filter_form(h: &mut Html, action: &str, filter: &str, placeholder: &str) {
    h.el(
        "form",
        &[("method", "get"), ("action", action), ("class", "filter")],
        |h| {
            h.void(
                "input",
                &[
                    ("name", "q"),
                    ("value", filter),
                    ("placeholder", placeholder),
                ],
            );
            h.text_el("button", &[("type", "submit")], "Filter");
        },
    );
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn overview(o: &Overview) -> String {
    layout("Overview", Section::Overview, "/api/overview", |h| {
        h.el("section", &[("id", "health")], |h| {
            if o.readiness.ready {
                h.text_el("p", &[("class", "ok")], "Ready");
            } else {
                h.text_el("p", &[("class", "bad")], "Not ready");
                h.el("ul", &[("class", "reasons")], |h| {
                    for r in &o.readiness.reasons {
                        h.text_el("li", &[], r);
                    }
                });
            }
        });
        let last = o.rates.last().copied().unwrap_or_default();
        h.el("dl", &[("class", "cards"), ("id", "summary")], |h| {
            let mut card = |label: &str, value: String| {
                h.el("div", &[], |h| {
                    h.text_el("dt", &[], label);
                    h.text_el("dd", &[], &value);
                });
            };
            card("Cluster id", o.cluster_id.clone());
            card("Brokers", o.brokers.len().to_string());
            card("Topics", o.topics.to_string());
            card("Partitions", o.partitions.to_string());
            card("Consumer groups", o.groups.to_string());
            card("Open transactions", o.open_transactions.to_string());
            card(
                "Produce",
                format_rate(f64::from(last.produced_records), "records/s"),
            );
            card(
                "Fetch",
                format_rate(f64::from(last.fetched_records), "records/s"),
            );
            card("Log size", bytes(o.log_size_bytes as f64));
            card(
                "Disk free",
                match (o.disk_free_bytes, o.disk_total_bytes) {
                    (Some(free), Some(total)) => {
                        format!("{} of {}", bytes(free as f64), bytes(total as f64))
                    }
                    _ => "unknown".to_string(),
                },
            );
        });
        h.text_el("h2", &[], "Throughput");
        let produced: Vec<f64> = o
            .rates
            .iter()
            .map(|r| f64::from(r.produced_bytes))
            .collect();
        let fetched: Vec<f64> = o.rates.iter().map(|r| f64::from(r.fetched_bytes)).collect();
        line_chart(
            h,
            &[("produce", "s0", &produced), ("fetch", "s1", &fetched)],
            "B/s",
            &span(o.rates.len(), o.sample_interval_ms),
        );
        h.text_el("h2", &[], "Brokers");
        table(h, "brokers", &["Node", "Host", "Port", ""], |h| {
            for b in &o.brokers {
                h.el("tr", &[], |h| {
                    td_num(h, b.node_id);
                    td(h, &b.host);
                    td_num(h, b.port);
                    td(h, if b.this { "this broker" } else { "" });
                });
            }
        });
    })
}

/// The time `points` samples cover, in words.
fn span(points: usize, interval_ms: u64) -> String {
    let secs = points as u64 * interval_ms / 1000;
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

pub fn topics(l: &TopicList) -> String {
    let api = format!(
        "/api/topics?page={}&q={}",
        l.page.page,
        path_segment(&l.filter)
    );
    layout("Topics", Section::Topics, &api, |h| {
        filter_form(h, "/topics", &l.filter, "name contains");
        table(
            h,
            "topics",
            &[
                "Topic",
                "Partitions",
                "Size",
                "Retention ms",
                "Retention bytes",
                "Cleanup",
                "Produce",
                "Last hour",
            ],
            |h| {
                for t in &l.topics {
                    h.el("tr", &[], |h| {
                        h.el("td", &[], |h| {
                            h.link(&format!("/topics/{}", path_segment(&t.name)), &t.name)
                        });
                        td_num(h, t.partitions);
                        td(h, &bytes(t.size_bytes as f64));
                        td(h, &t.retention_ms);
                        td(h, &t.retention_bytes);
                        td(h, &t.cleanup_policy);
                        match t.produced_records_per_s {
                            Some(r) => td(h, &format_rate(f64::from(r), "records/s")),
                            None => td(h, "- (beyond weir.metrics.max.topics)"),
                        }
                        h.el("td", &[], |h| {
                            let v: Vec<f64> = t.sparkline.iter().map(|v| f64::from(*v)).collect();
                            sparkline(h, &v, 120, 24);
                        });
                    });
                }
            },
        );
        pager(h, "/topics", &l.page, &l.filter);
    })
}

/// The topic page; `token` is the CSRF token its forms carry.
pub fn topic(d: &TopicDetail, token: &str) -> String {
    let api = format!("/api/topics/{}?page={}", path_segment(&d.name), d.page.page);
    layout(&d.name, Section::Topics, &api, |h| {
        h.el("dl", &[("class", "cards"), ("id", "summary")], |h| {
            for (label, value) in [
                ("Topic id", d.id.clone()),
                ("Partitions", d.partition_count.to_string()),
                ("Size", bytes(d.size_bytes as f64)),
            ] {
                h.el("div", &[], |h| {
                    h.text_el("dt", &[], label);
                    h.text_el("dd", &[], &value);
                });
            }
        });
        h.text_el("h2", &[], "Throughput");
        if d.rates_folded {
            h.text_el(
                "p",
                &[],
                "This topic came beyond weir.metrics.max.topics: its counters are shared with other topics, so it has no rates of its own.",
            );
        } else {
            let produced: Vec<f64> = d
                .rates
                .iter()
                .map(|r| f64::from(r.produced_records))
                .collect();
            let fetched: Vec<f64> = d
                .rates
                .iter()
                .map(|r| f64::from(r.fetched_records))
                .collect();
            line_chart(
                h,
                &[("produce", "s0", &produced), ("fetch", "s1", &fetched)],
                "records/s",
                &format!("{} samples", d.rates.len()),
            );
        }
        h.text_el("h2", &[], "Partitions");
        table(
            h,
            "partitions",
            &[
                "Partition",
                "Log start",
                "Log end",
                "High watermark",
                "Last stable",
                "Size",
                "",
            ],
            |h| {
                for p in &d.partitions {
                    h.el("tr", &[], |h| {
                        td_num(h, p.partition);
                        td_num(h, p.log_start_offset);
                        td_num(h, p.log_end_offset);
                        td_num(h, p.high_watermark);
                        td_num(h, p.last_stable_offset);
                        td(h, &bytes(p.size_bytes as f64));
                        td(
                            h,
                            if p.poisoned {
                                "poisoned (failed fsync)"
                            } else {
                                ""
                            },
                        );
                    });
                }
            },
        );
        pager(
            h,
            &format!("/topics/{}", path_segment(&d.name)),
            &d.page,
            "",
        );
        h.text_el("h2", &[], "Consumer groups");
        table(
            h,
            "groups",
            &["Group", "State", "Members", "Partitions", "Lag"],
            |h| {
                for g in &d.groups {
                    h.el("tr", &[], |h| {
                        h.el("td", &[], |h| {
                            h.link(
                                &format!("/groups/{}", path_segment(&g.group_id)),
                                &g.group_id,
                            )
                        });
                        td(h, &g.state);
                        td_num(h, g.members);
                        td_num(h, g.partitions);
                        td_num(h, g.lag);
                    });
                }
            },
        );
        h.text_el("h2", &[], "Producers");
        table(
            h,
            "producers",
            &[
                "Partition",
                "Producer id",
                "Epoch",
                "Last sequence",
                "Last append",
                "Open txn from",
            ],
            |h| {
                for p in &d.producers {
                    h.el("tr", &[], |h| {
                        td_num(h, p.partition);
                        td_num(h, p.producer_id);
                        td_num(h, p.producer_epoch);
                        td_num(h, p.last_sequence);
                        td(h, &utc(p.last_timestamp_ms));
                        td(h, &opt(p.txn_start_offset));
                    });
                }
            },
        );
        h.el("p", &[], |h| {
            h.el(
                "a",
                &[
                    (
                        "href",
                        &format!("/topics/{}/messages", path_segment(&d.name)),
                    ),
                    ("id", "browse-link"),
                ],
                |h| h.text("Browse and tail messages →"),
            )
        });
        super::forms::produce_form(h, d, token);
        h.text_el("h2", &[], "Configs");
        super::forms::config_form(h, d, token);
        table(h, "configs", &["Key", "Value", "Source"], |h| {
            for c in &d.configs {
                let class = if c.source == "DYNAMIC_TOPIC_CONFIG" {
                    "override"
                } else {
                    ""
                };
                h.el("tr", &[("class", class)], |h| {
                    td(h, &c.name);
                    td(h, &c.value);
                    td(h, c.source);
                });
            }
        });
    })
}

pub fn groups(l: &GroupList) -> String {
    let api = format!(
        "/api/groups?page={}&q={}",
        l.page.page,
        path_segment(&l.filter)
    );
    layout("Consumer groups", Section::Groups, &api, |h| {
        filter_form(h, "/groups", &l.filter, "id contains");
        table(
            h,
            "groups",
            &[
                "Group",
                "Type",
                "Protocol type",
                "State",
                "Members",
                "Topics",
                "Lag",
            ],
            |h| {
                for g in &l.groups {
                    h.el("tr", &[], |h| {
                        h.el("td", &[], |h| {
                            h.link(
                                &format!("/groups/{}", path_segment(&g.group_id)),
                                &g.group_id,
                            )
                        });
                        td(h, g.group_type);
                        td(h, &g.protocol_type);
                        td(h, &g.state);
                        td_num(h, g.members);
                        td_num(h, g.topics);
                        td(h, &opt(g.lag));
                    });
                }
            },
        );
        pager(h, "/groups", &l.page, &l.filter);
    })
}

/// The group page; `token` is the CSRF token of its reset form.
pub fn group(d: &GroupDetail, token: &str) -> String {
    let api = format!("/api/groups/{}", path_segment(&d.group_id));
    layout(&d.group_id, Section::Groups, &api, |h| {
        h.el("dl", &[("class", "cards"), ("id", "summary")], |h| {
            for (label, value) in [
                ("State", d.state.clone()),
                ("Type", d.group_type.to_string()),
                ("Protocol type", d.protocol_type.clone()),
                ("Assignor", d.protocol.clone()),
                ("Members", d.members.len().to_string()),
                ("Lag", d.lag.to_string()),
            ] {
                h.el("div", &[], |h| {
                    h.text_el("dt", &[], label);
                    h.text_el("dd", &[], if value.is_empty() { "-" } else { &value });
                });
            }
        });
        h.text_el("h2", &[], "Members");
        table(
            h,
            "members",
            &[
                "Member id",
                "Instance id",
                "Client id",
                "Host",
                "Assignment",
            ],
            |h| {
                for m in &d.members {
                    h.el("tr", &[], |h| {
                        td(h, &m.member_id);
                        td(h, m.instance_id.as_deref().unwrap_or("-"));
                        td(h, &m.client_id);
                        td(h, &m.client_host);
                        let assigned = match &m.assignment {
                            None => "(not the consumer protocol)".to_string(),
                            Some(a) => a
                                .iter()
                                .map(|(t, ps)| {
                                    let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                                    format!("{t}: {}", ps.join(","))
                                })
                                .collect::<Vec<_>>()
                                .join("; "),
                        };
                        td(h, &assigned);
                    });
                }
            },
        );
        h.text_el("h2", &[], "Lag history");
        let records: Vec<f64> = d.lag_history.iter().map(|s| s.lag_records as f64).collect();
        let seconds: Vec<f64> = d.lag_history.iter().map(|s| s.lag_seconds).collect();
        h.el("div", &[("id", "lag-records")], |h| {
            line_chart(
                h,
                &[("lag (records)", "s0", &records)],
                "records",
                &span(records.len(), 60_000),
            )
        });
        h.el("div", &[("id", "lag-seconds")], |h| {
            line_chart(
                h,
                &[("lag (seconds)", "s1", &seconds)],
                "s",
                &span(seconds.len(), 60_000),
            )
        });
        h.text_el("h2", &[], "Offsets and lag");
        table(
            h,
            "offsets",
            &[
                "Topic",
                "Partition",
                "Committed",
                "High watermark",
                "Lag",
                "Member",
            ],
            |h| {
                for o in &d.offsets {
                    h.el("tr", &[], |h| {
                        h.el("td", &[], |h| {
                            h.link(&format!("/topics/{}", path_segment(&o.topic)), &o.topic)
                        });
                        td_num(h, o.partition);
                        td(h, &opt(o.committed));
                        td(h, &opt(o.high_watermark));
                        td(h, &opt(o.lag));
                        td(h, o.member.as_deref().unwrap_or("-"));
                    });
                }
            },
        );
        super::forms::reset_form(h, d, token);
    })
}

pub fn transactions(t: &Transactions) -> String {
    let api = format!("/api/transactions?page={}", t.page.page);
    layout("Transactions", Section::Transactions, &api, |h| {
        table(
            h,
            "transactions",
            &[
                "Transactional id",
                "State",
                "Producer id",
                "Epoch",
                "Timeout ms",
                "Started",
                "Partitions",
                "Groups",
            ],
            |h| {
                for x in &t.transactions {
                    h.el("tr", &[], |h| {
                        td(h, &x.transactional_id);
                        td(h, x.state);
                        td_num(h, x.producer_id);
                        td_num(h, x.producer_epoch);
                        td_num(h, x.timeout_ms);
                        td(
                            h,
                            &x.started_ms.map_or("-".to_string(), |ms| utc(ms as i64)),
                        );
                        td(h, &x.partitions.join(", "));
                        td(h, &x.groups.join(", "));
                    });
                }
            },
        );
        pager(h, "/transactions", &t.page, "");
        h.text_el(
            "p",
            &[("class", "note")],
            "Producers of a topic (what holds its last stable offset back) are on the topic's page.",
        );
    })
}

pub fn not_found(what: &str) -> String {
    layout("Not found", Section::Overview, "/api/overview", |h| {
        h.text_el("p", &[("id", "not-found")], what);
    })
}

/// A page that only says what went wrong (a refused POST).
pub fn error_page(title: &str, what: &str) -> String {
    layout(title, Section::Overview, "/api/overview", |h| {
        h.text_el("p", &[("id", "error"), ("class", "bad")], what);
    })
}

/// A page saying only `what` (a refusal), in a paragraph with the id `id`.
pub fn message_page(title: &str, id: &'static str, what: &str) -> String {
    layout(title, Section::Overview, "/api/overview", |h| {
        h.text_el("p", &[("id", id)], what);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_764_892_800_000 + 3_661_000), "2025-12-05 01:01:01");
    }
}
