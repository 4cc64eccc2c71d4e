use super::*;

fn one(sql: &str) -> WeirStatement {
    let mut all = parse(sql).expect(sql);
    assert_eq!(all.len(), 1, "{sql}");
    all.remove(0)
}

fn source(sql: &str) -> CreateSource {
    match one(sql) {
        WeirStatement::CreateSource(s) => *s,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn create_source_with_columns_watermark_includes_and_options() {
    let s = source(
        "create source IF NOT EXISTS Bids (Auction BIGINT NOT NULL, price numeric(10,2) DEFAULT 0, \
         \"Note\" varchar, date_time TIMESTAMP, WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) \
         INCLUDE key AS k INCLUDE partition \
         WITH (topic = 'bids', format = json, scan.startup.mode = 'earliest', csv.delimiter = ';', n = 5)",
    );
    assert_eq!(s.name, "bids");
    assert!(s.if_not_exists);
    let names: Vec<&str> = s.columns.iter().map(|c| c.name.value.as_str()).collect();
    assert_eq!(names, vec!["auction", "price", "Note", "date_time"]);
    let (wm_col, wm_expr) = s.watermark.clone().expect("watermark");
    assert_eq!(wm_col, "date_time");
    assert_eq!(wm_expr.to_string(), "date_time - INTERVAL '4' SECOND");
    assert_eq!(
        s.includes,
        vec![
            (Meta::Key, "k".to_string()),
            (Meta::Partition, "_partition".to_string())
        ]
    );
    assert_eq!(s.options["topic"], "bids");
    assert_eq!(s.options["format"], "json");
    assert_eq!(s.options["scan.startup.mode"], "earliest");
    assert_eq!(s.options["csv.delimiter"], ";");
    assert_eq!(s.options["n"], "5");
    // What the catalog stores parses back to the same definition.
    let again = source(&s.to_string());
    assert_eq!(
        again,
        CreateSource {
            if_not_exists: false,
            ..s
        }
    );
}

#[test]
fn create_source_without_columns_and_errors() {
    let s = source("CREATE SOURCE s WITH (topic = 't')");
    assert!(s.columns.is_empty());
    for bad in [
        "CREATE SOURCE s () WITH (topic = 't')",
        "CREATE SOURCE s (a int) INCLUDE nothing",
        "CREATE SOURCE s (a int) WITH (topic = 't', topic = 'u')",
        "CREATE SOURCE s (a int WITH (topic = 't')",
        "CREATE SOURCE s (a int) WITH (topic 't')",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn create_table_with_a_primary_key() {
    let t = source(
        "CREATE TABLE IF NOT EXISTS Users (Id BIGINT, region VARCHAR, name varchar, \
         PRIMARY KEY (ID, Region)) WITH (topic = 'users', format = 'json')",
    );
    assert_eq!(t.name, "users");
    assert_eq!(
        t.primary_key,
        Some(vec!["id".to_string(), "region".to_string()])
    );
    assert_eq!(
        t.to_string(),
        "CREATE TABLE users (id BIGINT, region VARCHAR, name VARCHAR, PRIMARY KEY (id, region)) \
         WITH (format = 'json', topic = 'users')"
    );
    assert_eq!(
        source(&t.to_string()),
        CreateSource {
            if_not_exists: false,
            ..t
        }
    );
    // On a column.
    let t = source("CREATE TABLE t (k INT PRIMARY KEY, v INT) WITH (topic = 't')");
    assert_eq!(t.primary_key, Some(vec!["k".to_string()]));
    assert!(t.columns[0].options.is_empty(), "{:?}", t.columns[0]);
    for bad in [
        "CREATE TABLE t (a int) WITH (topic = 't')",
        "CREATE TABLE t (a int PRIMARY KEY, PRIMARY KEY (a)) WITH (topic = 't')",
        "CREATE TABLE t (a int, PRIMARY KEY (a), PRIMARY KEY (a)) WITH (topic = 't')",
        "CREATE TABLE t (a int, PRIMARY KEY ()) WITH (topic = 't')",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn weir_statements_and_plain_sql() {
    assert_eq!(one("SHOW SOURCES"), WeirStatement::Show(ObjectKind::Source));
    assert_eq!(
        one("show materialized views;"),
        WeirStatement::Show(ObjectKind::MaterializedView)
    );
    assert_eq!(
        one("DESCRIBE public.Bids"),
        WeirStatement::Describe("bids".into())
    );
    assert_eq!(
        one("DROP SOURCE IF EXISTS s CASCADE"),
        WeirStatement::Drop {
            kind: ObjectKind::Source,
            if_exists: true,
            name: "s".into(),
            cascade: true
        }
    );
    assert!(matches!(
        one("EXPLAIN CREATE MATERIALIZED VIEW v AS SELECT (1)"),
        WeirStatement::ExplainCreate(s) if matches!(*s, WeirStatement::CreateView(_))
    ));
    assert!(matches!(
        one("EXPLAIN VERBOSE CREATE SINK k INTO t AS SELECT a FROM s"),
        WeirStatement::ExplainCreate(s) if matches!(*s, WeirStatement::CreateSink(_))
    ));
    for not_yet in [
        "CREATE OR REPLACE TABLE t (a int, PRIMARY KEY (a)) WITH (topic = 't')",
        "EXPLAIN CREATE SOURCE s (a int) WITH (topic = 't')",
    ] {
        assert!(
            matches!(one(not_yet), WeirStatement::NotYet(_)),
            "{not_yet}"
        );
    }
    let WeirStatement::CreateView(v) =
        one("CREATE MATERIALIZED VIEW IF NOT EXISTS V AS SELECT a FROM s")
    else {
        panic!("a view")
    };
    assert_eq!((v.name.as_str(), v.if_not_exists), ("v", true));
    assert_eq!(
        v.to_string(),
        "CREATE MATERIALIZED VIEW v AS SELECT a FROM s"
    );
    let WeirStatement::CreateSink(k) = one("CREATE SINK k INTO orders.clean-1 FORMAT JSON FROM v")
    else {
        panic!("a sink")
    };
    assert_eq!(k.input, SinkInput::From("v".into()));
    assert_eq!(
        k.options.get("topic").map(String::as_str),
        Some("orders.clean-1")
    );
    assert_eq!(k.options.get("format").map(String::as_str), Some("json"));
    // What the catalog stores parses back to the same sink.
    assert_eq!(one(&k.to_string()), WeirStatement::CreateSink(k.clone()));
    let WeirStatement::CreateSink(q) =
        one("CREATE SINK q AS SELECT a FROM s WHERE a > 1 WITH (topic = 'out')")
    else {
        panic!("a sink")
    };
    let SinkInput::Query(body) = &q.input else {
        panic!("a query")
    };
    assert_eq!(body.to_string(), "SELECT a FROM s WHERE a > 1");
    assert_eq!(q.options.get("topic").map(String::as_str), Some("out"));
    assert_eq!(one(&q.to_string()), WeirStatement::CreateSink(q.clone()));
    let WeirStatement::CreateSink(u) = one(
        "CREATE SINK u AS SELECT a FROM s UNION ALL SELECT a FROM t WITH (topic = 'o', format = csv)",
    ) else {
        panic!("a sink")
    };
    assert_eq!(u.options.get("format").map(String::as_str), Some("csv"));
    assert_eq!(one(&u.to_string()), WeirStatement::CreateSink(u.clone()));
    assert!(parse("CREATE SINK k INTO t").is_err(), "FROM or AS");
    for (sql, topic) in [
        ("CREATE SINK k INTO out-279cab6551 FROM v", "out-279cab6551"),
        ("CREATE SINK k INTO a.b-1.C FROM v", "a.b-1.C"),
        ("CREATE SINK k INTO 'x y' FROM v", "x y"),
    ] {
        let WeirStatement::CreateSink(k) = one(sql) else {
            panic!("{sql}")
        };
        assert_eq!(
            k.options.get("topic").map(String::as_str),
            Some(topic),
            "{sql}"
        );
    }
    // EMIT ON WINDOW CLOSE after a view's or a sink's query, kept in the stored text.
    let WeirStatement::CreateView(w) = one(
        "CREATE MATERIALIZED VIEW w AS SELECT window_start, count(*) FROM \
         TUMBLE(s, ts, INTERVAL '1' MINUTE) GROUP BY window_start EMIT ON WINDOW CLOSE",
    ) else {
        panic!("a view")
    };
    assert!(w.emit_on_window_close);
    assert!(w
        .to_string()
        .ends_with("GROUP BY window_start EMIT ON WINDOW CLOSE"));
    assert_eq!(one(&w.to_string()), WeirStatement::CreateView(w.clone()));
    let WeirStatement::CreateSink(e) = one(
        "CREATE SINK e AS SELECT window_start, count(*) FROM TUMBLE(s, ts, INTERVAL '1' MINUTE) \
         GROUP BY window_start EMIT ON WINDOW CLOSE WITH (topic = 'o')",
    ) else {
        panic!("a sink")
    };
    assert!(e.emit_on_window_close);
    assert_eq!(e.options.get("topic").map(String::as_str), Some("o"));
    assert_eq!(one(&e.to_string()), WeirStatement::CreateSink(e.clone()));
    assert!(parse("CREATE MATERIALIZED VIEW x AS SELECT 1 EMIT ON WINDOW").is_err());
    // After a bare table name, where sqlparser reads EMIT as an alias: taken back, the
    // stored text round-trips; an explicit alias named emit stays one.
    let WeirStatement::CreateView(b) = one(
        "CREATE MATERIALIZED VIEW b AS WITH t AS (SELECT 1) SELECT * FROM t EMIT ON WINDOW CLOSE",
    ) else {
        panic!("a view")
    };
    assert!(b.emit_on_window_close);
    assert!(
        b.to_string().ends_with("FROM t EMIT ON WINDOW CLOSE"),
        "{b}"
    );
    assert_eq!(one(&b.to_string()), WeirStatement::CreateView(b.clone()));
    let WeirStatement::CreateSink(j) =
        one("CREATE SINK j INTO o AS SELECT * FROM a JOIN b ON a.k = b.k, c EMIT ON WINDOW CLOSE")
    else {
        panic!("a sink")
    };
    assert!(j.emit_on_window_close);
    assert!(
        parse("CREATE MATERIALIZED VIEW x AS SELECT * FROM t AS emit ON WINDOW CLOSE").is_err()
    );
    // SHOW CREATE, with or without the object's kind.
    assert_eq!(
        one("SHOW CREATE MATERIALIZED VIEW public.v"),
        WeirStatement::ShowCreate {
            kind: Some(ObjectKind::MaterializedView),
            name: "v".into()
        }
    );
    assert_eq!(
        one("SHOW CREATE \"Mixed\""),
        WeirStatement::ShowCreate {
            kind: None,
            name: "Mixed".into()
        }
    );
    assert!(matches!(
        one("SELECT * FROM s WHERE a > 1"),
        WeirStatement::Sql(_)
    ));
    assert!(matches!(
        one("INSERT INTO s VALUES (1, 'a')"),
        WeirStatement::Sql(_)
    ));
    assert!(matches!(
        one("SET extra_float_digits = 3"),
        WeirStatement::Sql(_)
    ));
    assert!(matches!(
        one("SHOW transaction_isolation"),
        WeirStatement::Sql(_)
    ));
}

#[test]
fn several_statements_and_syntax_errors() {
    let all = parse("SHOW SOURCES; ; SELECT 1;").expect("two");
    assert_eq!(all.len(), 2);
    assert!(parse("").expect("empty").is_empty());
    assert!(parse("SELEC 1").is_err());
    assert!(parse("SELECT 1 SELECT 2").is_err());
}

#[test]
fn identifiers_quote_when_needed() {
    assert_eq!(quote_ident("plain_1"), "plain_1");
    assert_eq!(quote_ident("Mixed"), "\"Mixed\"");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_ident("1st"), "\"1st\"");
}

#[test]
fn views_renames_and_truncate() {
    let WeirStatement::CreatePlainView(v) =
        one("CREATE VIEW IF NOT EXISTS Big (A, \"b\") AS SELECT x, y FROM s WHERE x > 1")
    else {
        panic!("a view")
    };
    assert_eq!(v.name, "big");
    assert!(v.if_not_exists);
    assert_eq!(v.columns, ["a", "b"]);
    assert_eq!(
        v.to_string(),
        "CREATE VIEW big (a, b) AS SELECT x, y FROM s WHERE x > 1"
    );
    assert!(parse("CREATE VIEW v (a, a) AS SELECT 1, 2").is_err());
    let WeirStatement::CreatePlainView(r) = one("create or replace view V AS SELECT 1 AS a") else {
        panic!("a view")
    };
    assert!(r.or_replace && !r.if_not_exists);
    // Stored as the plain CREATE VIEW it now is.
    assert_eq!(r.to_string(), "CREATE VIEW v AS SELECT 1 AS a");
    assert!(parse("CREATE OR REPLACE VIEW IF NOT EXISTS v AS SELECT 1").is_err());
    assert!(matches!(
        one("CREATE OR REPLACE MATERIALIZED VIEW v AS SELECT 1"),
        WeirStatement::NotYet(m) if m.contains("another name")
    ));
    // A materialized view's options, kept in its stored text.
    let WeirStatement::CreateView(m) =
        one("CREATE MATERIALIZED VIEW m WITH (STATE_TTL = '10 seconds') AS SELECT a FROM s")
    else {
        panic!("a materialized view")
    };
    assert_eq!(
        m.options.get("state_ttl").map(String::as_str),
        Some("10 seconds")
    );
    assert_eq!(
        m.to_string(),
        "CREATE MATERIALIZED VIEW m WITH (state_ttl = '10 seconds') AS SELECT a FROM s"
    );
    assert_eq!(one(&m.to_string()), WeirStatement::CreateView(m.clone()));
    assert!(parse("CREATE MATERIALIZED VIEW m WITH (ttl = '1 s') AS SELECT 1").is_err());
    assert_eq!(one("SHOW VIEWS"), WeirStatement::Show(ObjectKind::View));
    assert_eq!(
        one("SHOW CREATE VIEW v"),
        WeirStatement::ShowCreate {
            kind: Some(ObjectKind::View),
            name: "v".into()
        }
    );
    assert_eq!(
        one("DROP VIEW IF EXISTS v CASCADE"),
        WeirStatement::Drop {
            kind: ObjectKind::View,
            if_exists: true,
            name: "v".into(),
            cascade: true
        }
    );
    for (sql, kind) in [
        ("ALTER SOURCE a RENAME TO b", ObjectKind::Source),
        ("ALTER TABLE a RENAME TO b", ObjectKind::Table),
        (
            "ALTER MATERIALIZED VIEW a RENAME TO b",
            ObjectKind::MaterializedView,
        ),
        ("ALTER VIEW a RENAME TO b", ObjectKind::View),
        ("ALTER SINK public.a RENAME TO B", ObjectKind::Sink),
    ] {
        assert_eq!(
            one(sql),
            WeirStatement::Rename(Rename {
                kind,
                name: "a".into(),
                new_name: "b".into()
            }),
            "{sql}"
        );
    }
    assert!(parse("ALTER SOURCE a ADD COLUMN c INT").is_err());
    assert_eq!(one("TRUNCATE t"), WeirStatement::Truncate("t".into()));
    assert_eq!(one("truncate table T"), WeirStatement::Truncate("t".into()));
}
