//! Each statement as the catalog stores it: SQL that parses back to the same statement
//! (inferred columns written out, `IF NOT EXISTS` dropped by the caller).

use std::fmt;

use datafusion::sql::sqlparser::ast::ColumnOption;

use super::{CreateSink, CreateSource, CreateView, SinkInput};

/// The source's definition as SQL that parses back to it: what the catalog stores, with
/// inferred columns written out so a restart never re-infers.
impl fmt::Display for CreateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.primary_key.is_some() {
            "TABLE"
        } else {
            "SOURCE"
        };
        write!(f, "CREATE {what} {}", quote_ident(&self.name))?;
        if !self.columns.is_empty() {
            f.write_str(" (")?;
            for (i, c) in self.columns.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} {}", quote_ident(&c.name.value), c.data_type)?;
                for o in &c.options {
                    match &o.option {
                        ColumnOption::NotNull => f.write_str(" NOT NULL")?,
                        ColumnOption::Default(e) => write!(f, " DEFAULT {e}")?,
                        other => write!(f, " {other}")?,
                    }
                }
            }
            if let Some((column, expr)) = &self.watermark {
                write!(f, ", WATERMARK FOR {} AS {expr}", quote_ident(column))?;
            }
            if let Some(key) = &self.primary_key {
                let key: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
                write!(f, ", PRIMARY KEY ({})", key.join(", "))?;
            }
            f.write_str(")")?;
        }
        for (meta, alias) in &self.includes {
            write!(f, " INCLUDE {} AS {}", meta.keyword(), quote_ident(alias))?;
        }
        if !self.options.is_empty() {
            f.write_str(" WITH (")?;
            for (i, (k, v)) in self.options.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k} = '{}'", v.replace('\'', "''"))?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The view as the catalog stores it.
impl fmt::Display for CreateView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CREATE MATERIALIZED VIEW {}", quote_ident(&self.name))?;
        write_options(f, &self.options)?;
        write!(
            f,
            " AS {}{}",
            self.query,
            if self.emit_on_window_close {
                " EMIT ON WINDOW CLOSE"
            } else {
                ""
            }
        )
    }
}

/// The sink as the catalog stores it (options in WITH).
impl fmt::Display for CreateSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CREATE SINK {}", quote_ident(&self.name))?;
        // Options before the query, where no table can take them for hints.
        write_options(f, &self.options)?;
        match &self.input {
            SinkInput::From(v) => write!(f, " FROM {}", quote_ident(v))?,
            SinkInput::Query(q) => write!(f, " AS {q}")?,
        }
        if self.emit_on_window_close {
            f.write_str(" EMIT ON WINDOW CLOSE")?;
        }
        Ok(())
    }
}

/// ` WITH (k = 'v', ...)`, nothing when there are no options.
fn write_options(
    f: &mut fmt::Formatter<'_>,
    options: &std::collections::BTreeMap<String, String>,
) -> fmt::Result {
    if options.is_empty() {
        return Ok(());
    }
    f.write_str(" WITH (")?;
    for (i, (k, v)) in options.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{k} = '{}'", v.replace('\'', "''"))?;
    }
    f.write_str(")")
}

/// Quotes an identifier unless it is a plain lower-case name.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
