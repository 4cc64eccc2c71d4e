//! The PostgreSQL wire protocol (pgwire): a connection's handlers for the startup, the
//! simple query and the extended query protocols over a [`Session`].

mod encode;
mod params;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, Stream, StreamExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

pub use encode::pg_type;

use crate::engine::{Output, Session};
use crate::error::SqlError;
use crate::parser::WeirStatement;

/// A statement prepared by the extended protocol's Parse.
#[derive(Clone, Debug)]
pub struct Prepared {
    statement: WeirStatement,
    /// The plan of a statement DataFusion runs, with its placeholders.
    plan: Option<LogicalPlan>,
}

/// One client connection's handlers.
pub struct Connection {
    session: Arc<Session>,
    parser: Arc<StatementParser>,
    startup: Arc<Startup>,
}

impl Connection {
    pub fn new(session: Session) -> Connection {
        let session = Arc::new(session);
        Connection {
            parser: Arc::new(StatementParser {
                session: session.clone(),
            }),
            session,
            startup: Arc::new(Startup::default()),
        }
    }
}

/// The handlers pgwire asks for, all this connection's.
pub struct Handlers(pub Arc<Connection>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.startup.clone()
    }
}

/// No authentication (any user and database), Weir's server parameters.
#[derive(Default)]
pub struct Startup {
    pids: RandomPidSecretKeyGenerator,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, key) = self.pids.generate(client);
            client.set_pid_and_secret_key(pid, key);
            finish_authentication(client, &ServerParameters).await?;
        }
        Ok(())
    }
}

struct ServerParameters;

impl ServerParameterProvider for ServerParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut p: HashMap<String, String> = crate::pg_catalog::STARTUP_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.insert("server_version".into(), crate::pg_catalog::server_version());
        if let Some(app) = client.metadata().get("application_name") {
            p.insert("application_name".into(), app.clone());
        }
        if let Some(user) = client.metadata().get("user") {
            p.insert("session_authorization".into(), user.clone());
        }
        Some(p)
    }
}

fn user_error(e: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

fn error_info(e: &SqlError) -> ErrorInfo {
    ErrorInfo::new("ERROR".to_string(), e.sqlstate().to_string(), e.to_string())
}

/// The command tag of an output, as PostgreSQL writes it.
fn tag(text: &str) -> Tag {
    let mut parts = text.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("INSERT"), Some(oid), Some(rows)) => Tag::new("INSERT")
            .with_oid(oid.parse().unwrap_or(0))
            .with_rows(rows.parse().unwrap_or(0)),
        (Some(command @ ("DELETE" | "UPDATE")), Some(rows), None) => {
            Tag::new(command).with_rows(rows.parse().unwrap_or(0))
        }
        _ => Tag::new(text),
    }
}

fn fields(schema: &SchemaRef, format: Option<&Format>) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let format = format.map_or(FieldFormat::Text, |fm| fm.format_for(i));
            FieldInfo::new(f.name().clone(), None, None, pg_type(f.data_type()), format)
        })
        .collect()
}

/// Rows of `batch` as DataRows in each field's format.
fn data_rows(batch: &RecordBatch, fields: &[FieldInfo]) -> Vec<DataRow> {
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut value = Vec::new();
    for row in 0..batch.num_rows() {
        let mut buf = BytesMut::new();
        for (column, field) in batch.columns().iter().zip(fields) {
            if column.is_null(row) {
                buf.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            value.clear();
            if field.format() == FieldFormat::Binary {
                encode::binary_value(column.as_ref(), row, &mut value);
            } else {
                encode::text(column.as_ref(), row, &mut value);
            }
            buf.extend_from_slice(&(value.len() as i32).to_be_bytes());
            buf.extend_from_slice(&value);
        }
        rows.push(DataRow::new(buf, batch.num_columns() as i16));
    }
    rows
}

fn rows_response(
    schema: SchemaRef,
    batches: impl Stream<Item = PgWireResult<RecordBatch>> + Send + 'static,
    format: Option<&Format>,
) -> Response {
    let fields = Arc::new(fields(&schema, format));
    let row_fields = fields.clone();
    let rows = batches.flat_map(move |b| {
        let out: Vec<PgWireResult<DataRow>> = match b {
            Ok(batch) => data_rows(&batch, &row_fields).into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(out)
    });
    Response::Query(QueryResponse::new(fields, rows))
}

fn response(output: Output, format: Option<&Format>) -> Response {
    match output {
        Output::Command(t) => match t.as_str() {
            "BEGIN" => Response::TransactionStart(tag(&t)),
            "COMMIT" | "ROLLBACK" => Response::TransactionEnd(tag(&t)),
            _ => Response::Execution(tag(&t)),
        },
        Output::Batches(schema, batches) => rows_response(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
            format,
        ),
        Output::Stream(schema, stream) => rows_response(
            schema,
            stream.map(|b| b.map_err(|e| user_error(SqlError::from(e)))),
            format,
        ),
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match crate::parser::parse(query) {
            Ok(s) => s,
            Err(e) => {
                return Ok(vec![Response::Error(Box::new(error_info(
                    &SqlError::from(e),
                )))])
            }
        };
        let mut out = Vec::new();
        for statement in statements {
            if let WeirStatement::Sql(s) = &statement {
                if let Statement::Deallocate { name, .. } = s.as_ref() {
                    client.portal_store().rm_statement(&name.value);
                }
            }
            match self.session.execute(statement).await {
                Ok(output) => out.push(response(output, None)),
                Err(e) => {
                    // PostgreSQL stops a multi-statement query at its first error.
                    out.push(Response::Error(Box::new(error_info(&e))));
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Parses and plans at Parse time, so Describe knows parameters and result columns.
pub struct StatementParser {
    session: Arc<Session>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = crate::parser::parse(sql).map_err(|e| user_error(e.into()))?;
        if statements.len() > 1 {
            return Err(user_error(SqlError::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            )));
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        let plan = match &statement {
            WeirStatement::Sql(s) if self.session.session_statement(s).is_none() => {
                Some(self.session.plan(s).await.map_err(user_error)?)
            }
            _ => None,
        };
        Ok(Some(Prepared { statement, plan }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        let Some(plan) = &stmt.plan else {
            return Ok(Vec::new());
        };
        let types = plan
            .get_parameter_types()
            .map_err(|e| user_error(e.into()))?;
        let count = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        Ok((1..=count)
            .map(|i| params::param_type(types.get(&format!("${i}")).and_then(Option::as_ref)))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let schema = match (&stmt.plan, &stmt.statement) {
            (Some(plan), _) if !matches!(plan, LogicalPlan::Dml(_)) => {
                Arc::new(plan.schema().as_arrow().clone())
            }
            (Some(_), _) => return Ok(Vec::new()),
            (None, s) => match crate::engine::result_schema(s) {
                Some(schema) => schema,
                None => return Ok(Vec::new()),
            },
        };
        Ok(fields(&schema, format))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let output = match &prepared.plan {
            Some(plan) => {
                let plan = bind(plan, portal).map_err(user_error)?;
                self.session.execute_plan(plan).await
            }
            None => self.session.execute(prepared.statement.clone()).await,
        }
        .map_err(user_error)?;
        Ok(response(output, Some(&portal.result_column_format)))
    }
}

/// The plan with the portal's parameter values in place of its placeholders.
fn bind(plan: &LogicalPlan, portal: &Portal<Prepared>) -> Result<LogicalPlan, SqlError> {
    if portal.parameters.is_empty() {
        return Ok(plan.clone());
    }
    let inferred = plan.get_parameter_types()?;
    let declared = &portal.statement.parameter_types;
    let values = portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            params::value(
                bytes.as_ref(),
                portal.parameter_format.is_binary(i),
                declared.get(i).and_then(Option::as_ref),
                inferred
                    .get(&format!("${}", i + 1))
                    .and_then(Option::as_ref),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(plan.clone().with_param_values(values)?)
}
