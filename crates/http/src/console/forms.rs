//! The console's forms and the pages answering them: produce and config edit on the topic
//! page, reset offsets on the group page (dry run, then apply), the live tail's controls on
//! the message browser, and the pipelines page. Every POST form carries the CSRF token in its
//! hidden field ([`super::csrf`]); the pages are written with the escaping builder like the
//! rest.

use super::actions::{ConfigsAltered, Produced};
use super::data::{GroupDetail, TopicDetail};
use super::html::{bytes, path_segment, Html};
use super::pages::{layout, Section};
use super::pipelines::Pipelines;
use super::reset::ResetPlan;

/// The live tail's few lines of JavaScript: an `EventSource` whose records are added with
/// `textContent` (never as markup), at most 500 rows kept on the page.
const TAIL_JS: &str = include_str!("../../assets/tail.js");

fn hidden(h: &mut Html, name: &'static str, value: &str) {
    h.void(
        "input",
        &[("type", "hidden"), ("name", name), ("value", value)],
    );
}

fn csrf_field(h: &mut Html, token: &str) {
    hidden(h, super::csrf::FIELD, token);
}

fn select(h: &mut Html, name: &'static str, id: &'static str, options: &[(String, String)]) {
    h.el("select", &[("name", name), ("id", id)], |h| {
        for (value, label) in options {
            h.el("option", &[("value", value)], |h| h.text(label));
        }
    });
}

fn labelled(h: &mut Html, label: &str, body: impl FnOnce(&mut Html)) {
    h.el("label", &[], |h| {
        h.text_el("span", &[], label);
        body(h);
    });
}

/// The topic page's produce form.
pub fn produce_form(h: &mut Html, d: &TopicDetail, token: &str) {
    let action = format!("/topics/{}/produce", path_segment(&d.name));
    h.text_el("h2", &[], "Produce a record");
    h.el(
        "form",
        &[
            ("method", "post"),
            ("action", &action),
            ("class", "action"),
            ("id", "produce-form"),
        ],
        |h| {
            csrf_field(h, token);
            labelled(h, "Partition", |h| {
                let mut opts = vec![(String::new(), "automatic (key hash)".to_string())];
                opts.extend(
                    (0..d.partition_count.min(1000)).map(|p| (p.to_string(), p.to_string())),
                );
                select(h, "partition", "produce-partition", &opts);
            });
            labelled(h, "Key", |h| {
                h.void("input", &[("name", "key"), ("id", "produce-key")]);
            });
            labelled(h, "Value", |h| {
                h.el(
                    "textarea",
                    &[("name", "value"), ("id", "produce-value"), ("rows", "4")],
                    |_| {},
                );
            });
            labelled(h, "Headers (one 'name: value' a line)", |h| {
                h.el(
                    "textarea",
                    &[
                        ("name", "headers"),
                        ("id", "produce-headers"),
                        ("rows", "2"),
                    ],
                    |_| {},
                );
            });
            h.text_el(
                "button",
                &[("type", "submit"), ("id", "produce")],
                "Produce",
            );
        },
    );
}

/// The topic page's config edit form (one key at a time).
pub fn config_form(h: &mut Html, d: &TopicDetail, token: &str) {
    let action = format!("/topics/{}/configs", path_segment(&d.name));
    h.el(
        "form",
        &[
            ("method", "post"),
            ("action", &action),
            ("class", "action"),
            ("id", "config-form"),
        ],
        |h| {
            csrf_field(h, token);
            labelled(h, "Key", |h| {
                let opts: Vec<(String, String)> = d
                    .configs
                    .iter()
                    .map(|c| (c.name.clone(), c.name.clone()))
                    .collect();
                select(h, "name", "config-name", &opts);
            });
            labelled(h, "Operation", |h| {
                let opts: Vec<(String, String)> = [
                    ("set", "set"),
                    ("delete", "delete (back to the default)"),
                    ("append", "append (lists)"),
                    ("subtract", "subtract (lists)"),
                ]
                .iter()
                .map(|(v, l)| (v.to_string(), l.to_string()))
                .collect();
                select(h, "op", "config-op", &opts);
            });
            labelled(h, "Value", |h| {
                h.void("input", &[("name", "value"), ("id", "config-value")]);
            });
            labelled(h, "Validate only", |h| {
                h.void(
                    "input",
                    &[
                        ("type", "checkbox"),
                        ("name", "validate_only"),
                        ("value", "true"),
                        ("id", "config-validate"),
                    ],
                );
            });
            h.text_el(
                "button",
                &[("type", "submit"), ("id", "alter-config")],
                "Alter config",
            );
        },
    );
}

/// The group page's reset form; "dry run" shows the plan, which has the "apply" button.
pub fn reset_form(h: &mut Html, d: &GroupDetail, token: &str) {
    let action = format!("/groups/{}/reset", path_segment(&d.group_id));
    h.text_el("h2", &[], "Reset offsets");
    if !d.members.is_empty() {
        h.text_el(
            "p",
            &[("class", "note"), ("id", "reset-refused")],
            "The group has active members: offsets can only be reset while it is empty (stop its consumers first).",
        );
    }
    h.el(
        "form",
        &[
            ("method", "post"),
            ("action", &action),
            ("class", "action"),
            ("id", "reset-form"),
        ],
        |h| {
            csrf_field(h, token);
            labelled(h, "To", |h| {
                let opts: Vec<(String, String)> = [
                    ("earliest", "earliest"),
                    ("latest", "latest"),
                    ("timestamp", "timestamp (ms)"),
                    ("offset", "offset"),
                    ("shift-by", "shift by"),
                ]
                .iter()
                .map(|(v, l)| (v.to_string(), l.to_string()))
                .collect();
                select(h, "to", "reset-to", &opts);
            });
            labelled(h, "Value", |h| {
                h.void(
                    "input",
                    &[
                        ("name", "value"),
                        ("id", "reset-value"),
                        ("placeholder", "ms / offset / ±N"),
                    ],
                );
            });
            labelled(h, "Topic", |h| {
                let mut topics: Vec<String> = d.offsets.iter().map(|o| o.topic.clone()).collect();
                topics.dedup();
                let mut opts = vec![(String::new(), "every committed topic".to_string())];
                opts.extend(topics.into_iter().map(|t| (t.clone(), t)));
                select(h, "topic", "reset-topic", &opts);
            });
            labelled(h, "Partition", |h| {
                h.void(
                    "input",
                    &[
                        ("name", "partition"),
                        ("id", "reset-partition"),
                        ("placeholder", "all"),
                    ],
                );
            });
            h.el(
                "button",
                &[
                    ("type", "submit"),
                    ("name", "action"),
                    ("value", "dry-run"),
                    ("id", "dry-run"),
                ],
                |h| h.text("Dry run"),
            );
        },
    );
}

fn back(h: &mut Html, href: &str, label: &str) {
    h.el("p", &[], |h| h.link(href, label));
}

pub fn produced(p: &Produced) -> String {
    let topic_href = format!("/topics/{}", path_segment(&p.topic));
    layout("Record produced", Section::Topics, &topic_href, |h| {
        h.el("p", &[("id", "produced"), ("class", "ok")], |h| {
            h.text(&format!(
                "Produced to {} partition {} at offset {} (partition chosen: {}).",
                p.topic, p.partition, p.offset, p.partitioner
            ))
        });
        let browse = format!(
            "/topics/{}/messages?partition={}&from=offset&at={}",
            path_segment(&p.topic),
            p.partition,
            p.offset
        );
        h.el("p", &[], |h| {
            h.el("a", &[("href", &browse), ("id", "see-record")], |h| {
                h.text("see it in the message browser")
            })
        });
        back(h, &topic_href, "← back to the topic");
    })
}

pub fn configs_altered(c: &ConfigsAltered) -> String {
    let topic_href = format!("/topics/{}", path_segment(&c.topic));
    layout("Configs altered", Section::Topics, &topic_href, |h| {
        let what = if c.validate_only {
            "Valid (nothing changed: validate only)"
        } else {
            "Altered"
        };
        h.el("p", &[("id", "altered"), ("class", "ok")], |h| {
            h.text(&format!("{what}: {} on {}.", c.applied.join(", "), c.topic))
        });
        back(h, &topic_href, "← back to the topic");
    })
}

/// A refused action: what was refused and why, with the way back.
pub fn action_error(title: &str, message: &str, back_href: &str) -> String {
    layout(title, Section::Overview, back_href, |h| {
        h.text_el("p", &[("id", "action-error"), ("class", "bad")], message);
        back(h, back_href, "← back");
    })
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn reset_plan(p: &ResetPlan, token: &str) -> String {
    let group_href = format!("/groups/{}", path_segment(&p.group_id));
    let title = if p.applied {
        "Offsets reset"
    } else {
        "Reset offsets: dry run"
    };
    layout(title, Section::Groups, &group_href, |h| {
        h.el("p", &[("id", "reset-summary")], |h| {
            h.text(&format!(
                "{} {} partition(s) of group {} to {}: lag {} → {}.",
                if p.applied { "Moved" } else { "Would move" },
                p.rows.len(),
                p.group_id,
                p.to,
                p.lag_before,
                p.lag_after
            ))
        });
        h.el("table", &[("id", "reset-plan")], |h| {
            h.el("thead", &[], |h| {
                h.el("tr", &[], |h| {
                    for c in [
                        "Topic",
                        "Partition",
                        "Log start",
                        "High watermark",
                        "Current",
                        "New",
                        "Lag before",
                        "Lag after",
                    ] {
                        h.text_el("th", &[], c);
                    }
                });
            });
            h.el("tbody", &[], |h| {
                for r in &p.rows {
                    h.el("tr", &[], |h| {
                        h.text_el("td", &[], &r.topic);
                        for v in [
                            r.partition.to_string(),
                            r.log_start_offset.to_string(),
                            r.high_watermark.to_string(),
                            opt(r.current),
                            r.new.to_string(),
                            opt(r.lag_before),
                            r.lag_after.to_string(),
                        ] {
                            h.text_el("td", &[("class", "num")], &v);
                        }
                    });
                }
            });
        });
        if !p.applied {
            let action = format!("/groups/{}/reset", path_segment(&p.group_id));
            h.el(
                "form",
                &[("method", "post"), ("action", &action), ("class", "action")],
                |h| {
                    csrf_field(h, token);
                    hidden(h, "to", &p.form.to);
                    hidden(h, "value", &p.form.value);
                    hidden(h, "topic", &p.form.topic);
                    hidden(h, "partition", &p.form.partition);
                    h.el(
                        "button",
                        &[
                            ("type", "submit"),
                            ("name", "action"),
                            ("value", "apply"),
                            ("id", "apply"),
                        ],
                        |h| h.text("Apply"),
                    );
                },
            );
            h.text_el(
                "p",
                &[("class", "note")],
                "Apply computes the offsets again (earliest and latest may have moved) and commits them.",
            );
        }
        back(h, &group_href, "← back to the group");
    })
}

/// The message browser's live tail: a button, a status line and a table the script fills.
pub fn tail_section(h: &mut Html, topic: &str, partition: &str, filters: &str) {
    let mut src = format!("/topics/{}/tail?", path_segment(topic));
    if !partition.is_empty() {
        src.push_str(&format!("partition={}&", path_segment(partition)));
    }
    src.push_str(filters);
    h.text_el("h2", &[], "Live tail");
    h.el("div", &[("id", "tail-box"), ("data-src", &src)], |h| {
        h.text_el(
            "button",
            &[("type", "button"), ("id", "tail-start")],
            "Start",
        );
        h.text_el(
            "button",
            &[
                ("type", "button"),
                ("id", "tail-stop"),
                ("disabled", "disabled"),
            ],
            "Stop",
        );
        h.text_el(
            "span",
            &[("id", "tail-status"), ("class", "note")],
            " records appended from now on appear here (newest first)",
        );
        h.el("table", &[("id", "tail")], |h| {
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
            h.el("tbody", &[], |_| {});
        });
    });
    h.raw("<script>");
    h.raw(TAIL_JS);
    h.raw("</script>");
}

pub fn pipelines_page(p: &Pipelines) -> String {
    layout("Pipelines", Section::Pipelines, "/api/pipelines", |h| {
        let rate = |r: Option<f32>| r.map_or("-".to_string(), |r| format!("{r:.1}/s"));
        match p.sql {
            "off" => {
                h.text_el(
                    "p",
                    &[("id", "pipelines-empty"), ("class", "note")],
                    "SQL is off: this weir was built without the SQL engine, so there are no sources, views or sinks.",
                );
                return;
            }
            "starting" => {
                h.text_el(
                    "p",
                    &[("id", "pipelines-empty"), ("class", "note")],
                    "The SQL engine is starting (or failed to start: see the log).",
                );
                return;
            }
            _ => {}
        }
        h.text_el("h2", &[], "Sources");
        h.el("table", &[("id", "sources")], |h| {
            h.el("thead", &[], |h| {
                h.el("tr", &[], |h| {
                    for c in ["Name", "Kind", "Topic", "Format", "Produce"] {
                        h.text_el("th", &[], c);
                    }
                });
            });
            h.el("tbody", &[], |h| {
                for s in &p.sources {
                    h.el("tr", &[], |h| {
                        h.text_el("td", &[], &s.info.name);
                        h.text_el("td", &[], &s.info.kind);
                        h.el("td", &[], |h| {
                            h.link(
                                &format!("/topics/{}", path_segment(&s.info.topic)),
                                &s.info.topic,
                            )
                        });
                        h.text_el("td", &[], &s.info.format);
                        h.text_el("td", &[("class", "num")], &rate(s.records_per_s));
                    });
                }
            });
        });
        h.text_el("h2", &[], "Views and sinks");
        h.el("table", &[("id", "pipelines")], |h| {
            h.el("thead", &[], |h| {
                h.el("tr", &[], |h| {
                    for c in [
                        "Name",
                        "Kind",
                        "Topic",
                        "Status",
                        "Epoch",
                        "Records out",
                        "Output rate",
                        "Dead letters",
                        "State",
                        "Watermarks",
                    ] {
                        h.text_el("th", &[], c);
                    }
                });
            });
            h.el("tbody", &[], |h| {
                for r in &p.pipelines {
                    let i = &r.info;
                    h.el("tr", &[], |h| {
                        h.text_el("td", &[], &i.name);
                        h.text_el("td", &[], &i.kind);
                        h.el("td", &[], |h| {
                            h.link(&format!("/topics/{}", path_segment(&i.topic)), &i.topic)
                        });
                        h.text_el("td", &[], &i.status);
                        h.text_el("td", &[("class", "num")], &opt(i.epoch.map(|e| e as i64)));
                        h.text_el("td", &[("class", "num")], &i.records_out.to_string());
                        h.text_el("td", &[("class", "num")], &rate(r.output_records_per_s));
                        h.text_el("td", &[("class", "num")], &i.dead_letters.to_string());
                        h.text_el(
                            "td",
                            &[],
                            &format!(
                                "{} of {}",
                                bytes(i.state_bytes as f64),
                                bytes(i.memory_max_bytes as f64)
                            ),
                        );
                        let marks: Vec<String> = i
                            .watermarks
                            .iter()
                            .map(|(t, ms)| format!("{t}: {}", super::pages::utc(*ms)))
                            .collect();
                        h.text_el("td", &[], &marks.join("; "));
                    });
                }
            });
        });
    })
}
