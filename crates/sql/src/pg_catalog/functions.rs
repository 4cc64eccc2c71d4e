//! The functions clients call besides SQL's own: constants (`version()`,
//! `pg_table_is_visible`, descriptions Weir has none of), `format_type` and the OID lookup
//! `'name'::regclass` is rewritten to.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, Volatility};
use datafusion::prelude::SessionContext;

use super::builtin_types::type_name;
use super::tables::PgCatalog;
use super::{relations, server_version, Sources};
use crate::views::Views;

/// Registers the `pg_catalog` schema and the functions clients call.
pub fn register(ctx: &SessionContext, sources: Sources, views: Views) {
    if let Some(catalog) = ctx.catalog("weir") {
        let schema = Arc::new(PgCatalog::new(sources.clone(), views.clone()));
        if let Err(e) = catalog.register_schema("pg_catalog", schema) {
            tracing::error!(error = %e, "cannot register pg_catalog");
        }
    }
    let text = |v: &str| ScalarValue::Utf8(Some(v.to_string()));
    let version = format!("PostgreSQL {} on Weir", server_version());
    for (name, value) in [
        ("version", text(&version)),
        ("current_database", text("weir")),
        ("current_schema", text("public")),
        ("pg_backend_pid", ScalarValue::Int32(Some(1))),
    ] {
        constant_fn(ctx, name, Signature::nullary(Volatility::Stable), value);
    }
    let any = || Signature::variadic_any(Volatility::Stable);
    constant_fn(
        ctx,
        "pg_table_is_visible",
        any(),
        ScalarValue::Boolean(Some(true)),
    );
    constant_fn(
        ctx,
        "has_table_privilege",
        any(),
        ScalarValue::Boolean(Some(true)),
    );
    constant_fn(
        ctx,
        "has_schema_privilege",
        any(),
        ScalarValue::Boolean(Some(true)),
    );
    constant_fn(ctx, "pg_get_userbyid", any(), text("weir"));
    constant_fn(ctx, "pg_encoding_to_char", any(), text("UTF8"));
    constant_fn(ctx, "obj_description", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "col_description", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "shobj_description", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "pg_get_constraintdef", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "pg_get_indexdef", any(), ScalarValue::Utf8(None));
    constant_fn(
        ctx,
        "pg_get_statisticsobjdef_columns",
        any(),
        ScalarValue::Utf8(None),
    );
    ctx.register_udf(pg_get_expr());
    ctx.register_udf(pg_get_viewdef(sources.clone(), views.clone()));
    ctx.register_udf(format_type());
    ctx.register_udf(regclass(sources, views));
}

/// A function of constant value (what Weir has nothing to report for, or one answer).
fn constant_fn(ctx: &SessionContext, name: &str, signature: Signature, value: ScalarValue) {
    let data_type = value.data_type();
    let udf = SimpleScalarUDF::new_with_signature(
        name,
        signature,
        data_type,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    );
    ctx.register_udf(ScalarUDF::from(udf));
}

/// `pg_get_expr(expr, relation [, pretty])`: the catalog's expression columns (`adbin`,
/// `relpartbound`, `polqual`) hold SQL text already, returned as it is.
fn pg_get_expr() -> ScalarUDF {
    let udf = SimpleScalarUDF::new_with_signature(
        "pg_get_expr",
        Signature::variadic_any(Volatility::Immutable),
        DataType::Utf8,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(match args.first() {
                Some(ColumnarValue::Array(a)) if a.data_type() == &DataType::Utf8 => {
                    ColumnarValue::Array(a.clone())
                }
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(s))) => {
                    ColumnarValue::Scalar(ScalarValue::Utf8(s.clone()))
                }
                Some(ColumnarValue::Array(a)) => {
                    ColumnarValue::Array(Arc::new(StringArray::from(vec![None::<&str>; a.len()])))
                }
                _ => ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            })
        }),
    );
    ScalarUDF::from(udf)
}

/// `pg_get_viewdef(oid [, pretty])`: a view's or materialized view's query (psql's `\d+
/// view`, as `pg_views` and `pg_matviews` show it); NULL for other relations.
fn pg_get_viewdef(sources: Sources, views: Views) -> ScalarUDF {
    let udf = SimpleScalarUDF::new_with_signature(
        "pg_get_viewdef",
        Signature::variadic_any(Volatility::Stable),
        DataType::Utf8,
        Arc::new(move |args: &[ColumnarValue]| {
            let relations = relations(&sources, &views);
            let lookup = |oid: Option<i64>| -> Option<String> {
                let oid = oid?;
                relations
                    .iter()
                    .find(|r| r.oid == oid)
                    .and_then(|r| r.definition.clone())
            };
            let Some(oids) = first_as_oids(args)? else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            };
            let out: StringArray = oids.iter().map(lookup).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    ScalarUDF::from(udf)
}

/// The first argument of a catalog function taking an OID, as Int64 values, one per row
/// (`None` without arguments).
fn first_as_oids(args: &[ColumnarValue]) -> datafusion::error::Result<Option<Int64Array>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let Some(first) = arrays.first() else {
        return Ok(None);
    };
    let oids = datafusion::arrow::compute::cast(first, &DataType::Int64)?;
    Ok(Some(oids.as_primitive::<Int64Type>().clone()))
}

/// `format_type(type_oid, typmod)`: the type's SQL name.
fn format_type() -> ScalarUDF {
    let udf = SimpleScalarUDF::new_with_signature(
        "format_type",
        Signature::variadic_any(Volatility::Immutable),
        DataType::Utf8,
        Arc::new(|args: &[ColumnarValue]| {
            let names: StringArray = match first_as_oids(args)? {
                None => StringArray::from(vec![None::<&str>]),
                Some(oids) => oids.iter().map(|o| o.and_then(type_name)).collect(),
            };
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    );
    ScalarUDF::from(udf)
}

/// `'name'::regclass`, rewritten to `weir_regclass('name')`: the relation's OID.
fn regclass(sources: Sources, views: Views) -> ScalarUDF {
    let udf = SimpleScalarUDF::new_with_signature(
        "weir_regclass",
        Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        DataType::Int64,
        Arc::new(move |args: &[ColumnarValue]| {
            let lookup = |name: Option<&str>| -> Option<i64> {
                let name = name?.trim_matches('"');
                let name = name.rsplit('.').next().unwrap_or(name);
                relations(&sources, &views)
                    .into_iter()
                    .find(|r| r.name == name)
                    .map(|r| r.oid)
            };
            Ok(match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(s))) => {
                    ColumnarValue::Scalar(ScalarValue::Int64(lookup(s.as_deref())))
                }
                Some(ColumnarValue::Array(a)) => {
                    use datafusion::arrow::array::AsArray;
                    let out: Int64Array = a.as_string::<i32>().iter().map(lookup).collect();
                    ColumnarValue::Array(Arc::new(out))
                }
                _ => ColumnarValue::Scalar(ScalarValue::Int64(None)),
            })
        }),
    );
    ScalarUDF::from(udf)
}
