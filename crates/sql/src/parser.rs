//! Weir's statements over sqlparser, as DataFusion's `DFParser` adds `CREATE EXTERNAL TABLE`:
//! keywords, identifiers, types, expressions and queries come from sqlparser's PostgreSQL
//! dialect; only the shapes of Weir's own statements (`CREATE SOURCE`, `CREATE TABLE .. PRIMARY
//! KEY`, `SHOW SOURCES`, `DESCRIBE`, `DROP SOURCE`) are parsed here. Everything else is sqlparser's statement,
//! planned by DataFusion.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, ColumnDef, ColumnOption, Expr, Query, SetExpr, Statement, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

mod ddl;
mod display;
mod emit;
pub use ddl::{CreatePlainView, Rename};
pub use display::quote_ident;
use emit::emit_after;

/// The kinds of catalog objects (one namespace, as PostgreSQL's relations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Source,
    Table,
    MaterializedView,
    Sink,
    /// A named query, inlined where it is read (`CREATE VIEW`, not materialized).
    View,
}

impl ObjectKind {
    pub fn sql_name(self) -> &'static str {
        match self {
            ObjectKind::Source => "SOURCE",
            ObjectKind::Table => "TABLE",
            ObjectKind::MaterializedView => "MATERIALIZED VIEW",
            ObjectKind::Sink => "SINK",
            ObjectKind::View => "VIEW",
        }
    }
}

/// A Kafka record's metadata exposed as a column by `INCLUDE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meta {
    Key,
    Partition,
    Offset,
    Timestamp,
    Headers,
}

impl Meta {
    pub const ALL: [Meta; 5] = [
        Meta::Key,
        Meta::Partition,
        Meta::Offset,
        Meta::Timestamp,
        Meta::Headers,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Meta::Key => "key",
            Meta::Partition => "partition",
            Meta::Offset => "offset",
            Meta::Timestamp => "timestamp",
            Meta::Headers => "headers",
        }
    }

    /// The column's name without `AS alias`.
    pub fn default_name(self) -> String {
        format!("_{}", self.keyword())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub name: String,
    pub if_not_exists: bool,
    /// Empty: infer the columns from a sample of the topic.
    pub columns: Vec<ColumnDef>,
    /// `WATERMARK FOR col AS expr`.
    pub watermark: Option<(String, Expr)>,
    pub includes: Vec<(Meta, String)>,
    /// `WITH (key = value, ...)`, keys lower-cased.
    pub options: BTreeMap<String, String>,
    /// `CREATE TABLE`'s `PRIMARY KEY (k, ...)` (columns, normalized): `Some` makes this a
    /// table, the topic a changelog upserted by key (design §5.1).
    pub primary_key: Option<Vec<String>>,
}

/// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] name [WITH (state_ttl = '..')] AS query
/// [EMIT ON WINDOW CLOSE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    pub name: String,
    pub if_not_exists: bool,
    /// `WITH (key = value, ...)`, keys lower-cased: [`VIEW_OPTIONS`].
    pub options: BTreeMap<String, String>,
    pub query: Box<Query>,
    /// Windows emit once, when the watermark closes them (append-only output).
    pub emit_on_window_close: bool,
}

/// The options of a materialized view: its idle-state TTL ([`crate::state_ttl`]), which
/// wins over the session's `streaming.state_ttl`.
pub const VIEW_OPTIONS: &[&str] = &["state_ttl"];

/// What a sink writes: a view's rows, or a query's.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkInput {
    From(String),
    Query(Box<Query>),
}

/// `CREATE SINK [IF NOT EXISTS] name [INTO topic] [FORMAT f] [WITH (..)] { FROM view | AS
/// query } [WITH (topic = .., format = ..)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSink {
    pub name: String,
    pub if_not_exists: bool,
    pub input: SinkInput,
    /// `AS query EMIT ON WINDOW CLOSE`.
    pub emit_on_window_close: bool,
    /// `INTO topic` and `FORMAT f` land here as `topic` and `format`.
    pub options: BTreeMap<String, String>,
}

/// A statement as Weir executes it.
#[derive(Debug, Clone, PartialEq)]
pub enum WeirStatement {
    CreateSource(Box<CreateSource>),
    CreateView(Box<CreateView>),
    CreateSink(Box<CreateSink>),
    CreatePlainView(Box<CreatePlainView>),
    /// `ALTER {SOURCE | TABLE | MATERIALIZED VIEW | VIEW | SINK} name RENAME TO new`.
    Rename(Rename),
    /// `TRUNCATE [TABLE] name`.
    Truncate(String),
    /// `SHOW SOURCES | TABLES | MATERIALIZED VIEWS | SINKS`.
    Show(ObjectKind),
    /// `SHOW CREATE [MATERIALIZED VIEW | SINK | SOURCE | TABLE] name`: the statement that
    /// re-creates it, as stored.
    ShowCreate {
        kind: Option<ObjectKind>,
        name: String,
    },
    Describe(String),
    Drop {
        kind: ObjectKind,
        if_exists: bool,
        name: String,
        cascade: bool,
    },
    /// `EXPLAIN [VERBOSE] CREATE {MATERIALIZED VIEW | SINK} ...`: the stream graph it would
    /// run, nothing created.
    ExplainCreate(Box<WeirStatement>),
    /// A statement of the design that the streaming engine does not run yet:
    /// refused with SQLSTATE 0A000.
    NotYet(String),
    /// Anything else: sqlparser's statement, planned by DataFusion.
    Sql(Box<Statement>),
}

/// Parses `sql` into its statements (separated by `;`).
pub fn parse(sql: &str) -> Result<Vec<WeirStatement>, ParserError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql)?;
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            return Ok(out);
        }
        out.push(parse_one(&mut parser)?);
        if !parser.consume_token(&Token::SemiColon) && parser.peek_token().token != Token::EOF {
            return parser.expected("end of statement", parser.peek_token());
        }
    }
}

/// Parses one query (a view's body, or a query Weir writes itself).
pub fn parse_query(sql: &str) -> Result<Query, ParserError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql)?;
    Ok(*parser.parse_query()?)
}

/// Consumes the word `word` (case-insensitive, unquoted) if it comes next.
fn word(parser: &mut Parser, word: &str) -> bool {
    word_at(parser, 0, word) && {
        parser.next_token();
        true
    }
}

fn word_at(parser: &Parser, n: usize, word: &str) -> bool {
    matches!(
        &parser.peek_nth_token(n).token,
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word)
    )
}

fn words(parser: &mut Parser, ws: &[&str]) -> bool {
    if ws.iter().enumerate().all(|(i, w)| word_at(parser, i, w)) {
        for _ in ws {
            parser.next_token();
        }
        true
    } else {
        false
    }
}

fn parse_one(parser: &mut Parser) -> Result<WeirStatement, ParserError> {
    if word_at(parser, 0, "CREATE") {
        let or_replace = word_at(parser, 1, "OR");
        let kind_at = if or_replace { 3 } else { 1 };
        if !or_replace && word_at(parser, 1, "SOURCE") {
            parser.next_token();
            parser.next_token();
            return parse_create_source(parser).map(|c| WeirStatement::CreateSource(Box::new(c)));
        }
        if !or_replace && word_at(parser, 1, "MATERIALIZED") && word_at(parser, 2, "VIEW") {
            for _ in 0..3 {
                parser.next_token();
            }
            let if_not_exists = words(parser, &["IF", "NOT", "EXISTS"]);
            let name = object_name(parser)?;
            let options = parse_with(parser)?;
            if let Some(unknown) = options.keys().find(|k| !VIEW_OPTIONS.contains(&k.as_str())) {
                return Err(ParserError::ParserError(format!(
                    "unknown materialized view option {unknown} (known: {})",
                    VIEW_OPTIONS.join(", ")
                )));
            }
            if !word(parser, "AS") {
                return parser.expected("AS", parser.peek_token());
            }
            let mut query = parser.parse_query()?;
            let emit_on_window_close = emit_after(parser, &mut query);
            return Ok(WeirStatement::CreateView(Box::new(CreateView {
                name,
                if_not_exists,
                options,
                query,
                emit_on_window_close,
            })));
        }
        if !or_replace && word_at(parser, 1, "TABLE") {
            parser.next_token();
            parser.next_token();
            return parse_create_table(parser).map(|c| WeirStatement::CreateSource(Box::new(c)));
        }
        if !or_replace && word_at(parser, 1, "SINK") {
            parser.next_token();
            parser.next_token();
            return parse_create_sink(parser).map(|c| WeirStatement::CreateSink(Box::new(c)));
        }
        if word_at(parser, kind_at, "VIEW") && (!or_replace || word_at(parser, 2, "REPLACE")) {
            for _ in 0..=kind_at {
                parser.next_token();
            }
            return ddl::parse_create_view(parser, or_replace)
                .map(|v| WeirStatement::CreatePlainView(Box::new(v)));
        }
        for (ws, what) in [
            (
                &["TABLE"][..],
                "CREATE OR REPLACE TABLE is not supported (a table's rows live in its topic: \
                 DROP and CREATE it again, or ALTER TABLE .. RENAME TO)",
            ),
            (
                &["MATERIALIZED", "VIEW"][..],
                "CREATE OR REPLACE MATERIALIZED VIEW is not supported (as in PostgreSQL and \
                 RisingWave): a materialized view's state and topic are what its query built, \
                 so a new query needs a new view; CREATE it under another name, move readers \
                 to it, then DROP the old one (or ALTER MATERIALIZED VIEW .. RENAME TO)",
            ),
        ] {
            if ws
                .iter()
                .enumerate()
                .all(|(i, w)| word_at(parser, kind_at + i, w))
            {
                skip_statement(parser);
                return Ok(WeirStatement::NotYet(what.to_string()));
            }
        }
    }
    if words(parser, &["SHOW", "CREATE"]) {
        let kind = if words(parser, &["MATERIALIZED", "VIEW"]) {
            Some(ObjectKind::MaterializedView)
        } else if word(parser, "VIEW") {
            Some(ObjectKind::View)
        } else if word(parser, "SINK") {
            Some(ObjectKind::Sink)
        } else if word(parser, "SOURCE") {
            Some(ObjectKind::Source)
        } else if word(parser, "TABLE") {
            Some(ObjectKind::Table)
        } else {
            None
        };
        let name = object_name(parser)?;
        return Ok(WeirStatement::ShowCreate { kind, name });
    }
    if words(parser, &["SHOW", "SOURCES"]) {
        return Ok(WeirStatement::Show(ObjectKind::Source));
    }
    if words(parser, &["SHOW", "TABLES"]) {
        return Ok(WeirStatement::Show(ObjectKind::Table));
    }
    if words(parser, &["SHOW", "MATERIALIZED", "VIEWS"]) {
        return Ok(WeirStatement::Show(ObjectKind::MaterializedView));
    }
    if words(parser, &["SHOW", "SINKS"]) {
        return Ok(WeirStatement::Show(ObjectKind::Sink));
    }
    if words(parser, &["SHOW", "VIEWS"]) {
        return Ok(WeirStatement::Show(ObjectKind::View));
    }
    if let Some(statement) = ddl::parse_alter_or_truncate(parser)? {
        return Ok(statement);
    }
    if word(parser, "DESCRIBE") || word(parser, "DESC") {
        let name = object_name(parser)?;
        return Ok(WeirStatement::Describe(name));
    }
    if word_at(parser, 0, "DROP") {
        let kind = if word_at(parser, 1, "SOURCE") {
            Some((ObjectKind::Source, 2))
        } else if word_at(parser, 1, "TABLE") {
            Some((ObjectKind::Table, 2))
        } else if word_at(parser, 1, "MATERIALIZED") && word_at(parser, 2, "VIEW") {
            Some((ObjectKind::MaterializedView, 3))
        } else if word_at(parser, 1, "SINK") {
            Some((ObjectKind::Sink, 2))
        } else if word_at(parser, 1, "VIEW") {
            Some((ObjectKind::View, 2))
        } else {
            None
        };
        if let Some((kind, n)) = kind {
            for _ in 0..n {
                parser.next_token();
            }
            let if_exists = words(parser, &["IF", "EXISTS"]);
            let name = object_name(parser)?;
            let cascade = word(parser, "CASCADE");
            if !cascade {
                word(parser, "RESTRICT");
            }
            return Ok(WeirStatement::Drop {
                kind,
                if_exists,
                name,
                cascade,
            });
        }
    }
    let verbose = word_at(parser, 1, "VERBOSE");
    if word_at(parser, 0, "EXPLAIN") && word_at(parser, 1 + usize::from(verbose), "CREATE") {
        parser.next_token();
        if verbose {
            parser.next_token();
        }
        return match parse_one(parser)? {
            s @ (WeirStatement::CreateView(_) | WeirStatement::CreateSink(_)) => {
                Ok(WeirStatement::ExplainCreate(Box::new(s)))
            }
            WeirStatement::NotYet(m) => Ok(WeirStatement::NotYet(m)),
            _ => Ok(WeirStatement::NotYet(
                "EXPLAIN of CREATE explains materialized views and sinks".to_string(),
            )),
        };
    }
    Ok(WeirStatement::Sql(Box::new(parser.parse_statement()?)))
}

/// Skips to the end of the statement (a refused statement needs no parse of its body).
fn skip_statement(parser: &mut Parser) {
    let mut depth = 0usize;
    loop {
        match parser.peek_token().token {
            Token::EOF => return,
            Token::SemiColon if depth == 0 => return,
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        parser.next_token();
    }
}

/// An object name; unquoted parts fold to lower case, as PostgreSQL's do. A `public.` or
/// `pg_catalog.`-style qualifier is accepted and dropped (one namespace).
fn object_name(parser: &mut Parser) -> Result<String, ParserError> {
    let name = parser.parse_object_name(false)?;
    let last = name
        .0
        .last()
        .and_then(|p| p.as_ident().cloned())
        .ok_or_else(|| ParserError::ParserError("expected a name".to_string()))?;
    Ok(normalize(&last))
}

pub(crate) fn normalize(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn parse_create_sink(parser: &mut Parser) -> Result<CreateSink, ParserError> {
    let if_not_exists = words(parser, &["IF", "NOT", "EXISTS"]);
    let name = object_name(parser)?;
    let mut options = BTreeMap::new();
    if word(parser, "INTO") {
        options.insert("topic".to_string(), topic_name(parser)?);
    }
    if word(parser, "FORMAT") {
        let t = parser.next_token();
        match t.token {
            Token::Word(w) => options.insert("format".to_string(), w.value.to_lowercase()),
            Token::SingleQuotedString(s) => options.insert("format".to_string(), s.to_lowercase()),
            _ => return parser.expected("a format name", t),
        };
    }
    let mut with = parse_with(parser)?;
    let mut emit = false;
    let input = if word(parser, "FROM") {
        SinkInput::From(object_name(parser)?)
    } else if word(parser, "AS") {
        let mut query = parser.parse_query()?;
        // `AS SELECT .. FROM t WITH (topic = ..)`: sqlparser reads the trailing WITH as
        // table hints of the last table; they are the sink's options.
        with.extend(trailing_options(&mut query)?);
        emit = emit_after(parser, &mut query);
        SinkInput::Query(query)
    } else {
        return parser.expected("FROM or AS", parser.peek_token());
    };
    with.extend(parse_with(parser)?);
    for (k, v) in with {
        if options.insert(k.clone(), v).is_some() {
            return Err(ParserError::ParserError(format!("option {k} given twice")));
        }
    }
    Ok(CreateSink {
        name,
        if_not_exists,
        input,
        emit_on_window_close: emit,
        options,
    })
}

/// A topic name: a string, or a bare name that may hold dots, dashes and digits
/// (`orders.clean`, `out-279cab6551`): adjacent tokens with no space between them, kept as
/// written (topics are case-sensitive).
fn topic_name(parser: &mut Parser) -> Result<String, ParserError> {
    let first = parser.next_token();
    let mut name = match &first.token {
        Token::SingleQuotedString(s) => return Ok(s.clone()),
        Token::Word(w) => w.value.clone(),
        Token::Number(n, _) => n.clone(),
        _ => return parser.expected("a topic name", first),
    };
    let mut end = first.span.end;
    loop {
        let next = parser.peek_token();
        if next.span.start != end {
            return Ok(name);
        }
        match &next.token {
            Token::Word(w) if w.quote_style.is_none() => name.push_str(&w.value),
            Token::Number(n, _) => name.push_str(n),
            Token::Period => name.push('.'),
            Token::Minus => name.push('-'),
            _ => return Ok(name),
        }
        end = next.span.end;
        parser.next_token();
    }
}

/// Takes `key = value` table hints off the last table of `query` as options.
fn trailing_options(query: &mut Query) -> Result<Vec<(String, String)>, ParserError> {
    let mut body = query.body.as_mut();
    let select = loop {
        match body {
            SetExpr::Select(s) => break s,
            SetExpr::SetOperation { right, .. } => body = right.as_mut(),
            SetExpr::Query(q) => body = q.body.as_mut(),
            _ => return Ok(Vec::new()),
        }
    };
    let Some(from) = select.from.last_mut() else {
        return Ok(Vec::new());
    };
    let relation = match from.joins.last_mut() {
        Some(j) => &mut j.relation,
        None => &mut from.relation,
    };
    let TableFactor::Table { with_hints, .. } = relation else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for hint in std::mem::take(with_hints) {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = &hint
        else {
            return Err(ParserError::ParserError(format!(
                "sink option {hint}: expected key = 'value'"
            )));
        };
        let key = match left.as_ref() {
            Expr::Identifier(i) => i.value.to_lowercase(),
            Expr::CompoundIdentifier(parts) => parts
                .iter()
                .map(|p| p.value.to_lowercase())
                .collect::<Vec<_>>()
                .join("."),
            other => {
                return Err(ParserError::ParserError(format!(
                    "sink option {other}: expected a name"
                )))
            }
        };
        let value = match right.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => s.clone(),
                Value::Number(n, _) => n.to_string(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        };
        out.push((key, value));
    }
    Ok(out)
}

/// An optional `WITH (key = value, ...)`.
fn parse_with(parser: &mut Parser) -> Result<BTreeMap<String, String>, ParserError> {
    let mut options = BTreeMap::new();
    if word(parser, "WITH") {
        parser.expect_token(&Token::LParen)?;
        loop {
            let key = option_key(parser)?;
            parser.expect_token(&Token::Eq)?;
            let value = option_value(parser)?;
            if options.insert(key.clone(), value).is_some() {
                return Err(ParserError::ParserError(format!(
                    "option {key} given twice"
                )));
            }
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            parser.expect_token(&Token::RParen)?;
            break;
        }
    }
    Ok(options)
}

fn parse_create_source(parser: &mut Parser) -> Result<CreateSource, ParserError> {
    parse_source_or_table(parser, false)
}

/// `CREATE TABLE [IF NOT EXISTS] name (col type, ..., PRIMARY KEY (k, ...)) WITH (..)`: a
/// source's shape with a primary key, given as a table constraint or on one column.
fn parse_create_table(parser: &mut Parser) -> Result<CreateSource, ParserError> {
    let mut table = parse_source_or_table(parser, true)?;
    let key = table.primary_key.get_or_insert_with(Vec::new);
    for c in &mut table.columns {
        let before = c.options.len();
        c.options
            .retain(|o| !matches!(o.option, ColumnOption::PrimaryKey(_)));
        if c.options.len() != before {
            if !key.is_empty() {
                return Err(ParserError::ParserError(
                    "a table has one PRIMARY KEY".to_string(),
                ));
            }
            key.push(c.name.value.clone());
        }
    }
    if key.is_empty() {
        return Err(ParserError::ParserError(
            "CREATE TABLE needs a PRIMARY KEY (k, ...): a table's topic is a changelog upserted \
             by key (without one, use CREATE SOURCE)"
                .to_string(),
        ));
    }
    Ok(table)
}

fn parse_source_or_table(parser: &mut Parser, table: bool) -> Result<CreateSource, ParserError> {
    let if_not_exists = words(parser, &["IF", "NOT", "EXISTS"]);
    let name = object_name(parser)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut primary_key: Option<Vec<String>> = None;
    if parser.consume_token(&Token::LParen) {
        loop {
            if table && words(parser, &["PRIMARY", "KEY"]) {
                parser.expect_token(&Token::LParen)?;
                let mut key = Vec::new();
                loop {
                    key.push(normalize(&parser.parse_identifier()?));
                    if !parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                parser.expect_token(&Token::RParen)?;
                if primary_key.replace(key).is_some() {
                    return Err(ParserError::ParserError(
                        "a table has one PRIMARY KEY".to_string(),
                    ));
                }
            } else if word(parser, "WATERMARK") {
                if !word(parser, "FOR") {
                    return parser.expected("FOR", parser.peek_token());
                }
                let column = normalize(&parser.parse_identifier()?);
                if !word(parser, "AS") {
                    return parser.expected("AS", parser.peek_token());
                }
                let expr = parser.parse_expr()?;
                if watermark.replace((column, expr)).is_some() {
                    return Err(ParserError::ParserError(
                        "only one WATERMARK per source".to_string(),
                    ));
                }
            } else {
                let mut column = parser.parse_column_def()?;
                column.name.value = normalize(&column.name);
                column.name.quote_style = None;
                columns.push(column);
            }
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            parser.expect_token(&Token::RParen)?;
            break;
        }
        if columns.is_empty() {
            return Err(ParserError::ParserError(
                "a column list needs at least one column (omit it to infer the columns)"
                    .to_string(),
            ));
        }
    }
    let mut includes = Vec::new();
    while word(parser, "INCLUDE") {
        let next = parser.next_token();
        let meta = match &next.token {
            Token::Word(w) => Meta::ALL
                .into_iter()
                .find(|m| w.value.eq_ignore_ascii_case(m.keyword())),
            _ => None,
        };
        let Some(meta) = meta else {
            return parser.expected("key, partition, offset, timestamp or headers", next);
        };
        let alias = if word(parser, "AS") {
            normalize(&parser.parse_identifier()?)
        } else {
            meta.default_name()
        };
        includes.push((meta, alias));
    }
    let options = parse_with(parser)?;
    Ok(CreateSource {
        name,
        if_not_exists,
        columns,
        watermark,
        includes,
        options,
        primary_key,
    })
}

/// `scan.startup.mode`: identifiers joined by dots (keywords allowed), or a quoted string.
fn option_key(parser: &mut Parser) -> Result<String, ParserError> {
    let mut key = String::new();
    loop {
        let t = parser.next_token();
        match &t.token {
            Token::Word(w) => key.push_str(&w.value.to_lowercase()),
            Token::SingleQuotedString(s) => key.push_str(&s.to_lowercase()),
            _ => return parser.expected("an option name", t),
        }
        if !parser.consume_token(&Token::Period) {
            return Ok(key);
        }
        key.push('.');
    }
}

fn option_value(parser: &mut Parser) -> Result<String, ParserError> {
    let t = parser.next_token();
    match t.token {
        Token::SingleQuotedString(s) => Ok(s),
        Token::Number(n, _) => Ok(n),
        Token::Word(w) => Ok(w.value),
        Token::Minus => match parser.next_token().token {
            Token::Number(n, _) => Ok(format!("-{n}")),
            _ => parser.expected("a number", t),
        },
        _ => parser.expected("an option value", t),
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
