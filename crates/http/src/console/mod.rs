//! The web console (docs/design/operability.md §4): server-rendered pages over the broker's
//! memory, each with a JSON twin under `/api` built from the same struct.
//!
//! Every page is built and rendered on the blocking pool (it walks the topic table and the
//! coordinators, which take `std` locks) and answers with a `Server-Timing` header giving
//! the time it took, which the browser test and the scale measurement read.
//!
//! Each page is built for the request's viewer (`crate::auth`): what it may not DESCRIBE
//! is left out, and the navigation shows who is logged in.

mod assignment;
pub mod browse;
mod browse_page;
pub mod data;
pub mod html;
pub(crate) mod pages;
pub mod rates;
pub mod svg;

use std::time::Instant;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use weir_broker::state::State;

use crate::auth::{current_viewer, ShownViewer, Viewer};
use crate::Shared;
use rates::Rates;

const CSS: &str = include_str!("../../assets/console.css");

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(overview_html))
        .route("/api/overview", get(overview_json))
        .route("/topics", get(topics_html))
        .route("/api/topics", get(topics_json))
        .route("/topics/{name}", get(topic_html))
        .route("/api/topics/{name}", get(topic_json))
        .route("/topics/{name}/messages", get(messages_html))
        .route("/api/topics/{name}/messages", get(messages_json))
        .route("/groups", get(groups_html))
        .route("/api/groups", get(groups_json))
        .route("/groups/{id}", get(group_html))
        .route("/api/groups/{id}", get(group_json))
        .route("/transactions", get(txns_html))
        .route("/api/transactions", get(txns_json))
        .route("/assets/console.css", get(css))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    page: Option<usize>,
    q: Option<String>,
}

impl ListQuery {
    fn page(&self) -> usize {
        self.page.unwrap_or(1)
    }

    fn filter(&self) -> String {
        self.q.clone().unwrap_or_default().trim().to_string()
    }
}

/// What a page's builder gets: the state, the rate rings, whether the broker drains and
/// who is looking.
pub struct Ctx<'a> {
    pub state: &'a State,
    pub rates: &'a Rates,
    pub draining: bool,
    pub viewer: &'a Viewer,
}

impl Ctx<'_> {
    /// Whether the viewer may see `r` (the builders' filter).
    pub fn sees(&self, r: weir_broker::security::Resource<'_>) -> bool {
        self.viewer.sees(r)
    }
}

/// Why a page has nothing to show.
enum Missing {
    /// The broker has not finished recovering.
    Recovering,
    /// The topic or group asked for does not exist.
    NotFound(String),
    /// The query makes no sense (a bad offset, cursor or partition).
    BadRequest(String),
    /// The viewer sees the resource but may not do this with it.
    Forbidden(String),
}

/// Builds a page's data on the blocking pool, then renders it with `render` (HTML) or as JSON
/// (`render: None`).
async fn answer<T, B>(shared: Shared, build: B, render: Option<fn(&T) -> String>) -> Response
where
    T: Serialize + Send + 'static,
    B: FnOnce(&Ctx<'_>) -> Result<T, Missing> + Send + 'static,
{
    let started = Instant::now();
    let draining = *shared.draining.borrow();
    let Some(state) = shared.state.get().cloned() else {
        return missing(Missing::Recovering, render.is_some());
    };
    let rates = shared.rates.clone();
    let html = render.is_some();
    let viewer = current_viewer();
    let done = tokio::task::spawn_blocking(move || {
        let _shown = ShownViewer::set(&viewer);
        let ctx = Ctx {
            state: &state,
            rates: &rates,
            draining,
            viewer: &viewer,
        };
        let data = build(&ctx)?;
        Ok::<_, Missing>(match render {
            Some(render) => render(&data).into_bytes(),
            None => serde_json::to_vec(&data).unwrap_or_default(),
        })
    })
    .await;
    let body = match done {
        Ok(Ok(body)) => body,
        Ok(Err(m)) => return missing(m, html),
        Err(e) => {
            tracing::error!(error = %e, "console page panicked");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let content_type = if html {
        "text/html; charset=utf-8"
    } else {
        "application/json"
    };
    let timing = format!("app;dur={:.3}", started.elapsed().as_secs_f64() * 1000.0);
    let mut resp = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&timing) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

fn missing(m: Missing, html: bool) -> Response {
    let (code, what) = match m {
        Missing::Recovering => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is recovering its logs".to_string(),
        ),
        Missing::NotFound(what) => (StatusCode::NOT_FOUND, what),
        Missing::BadRequest(what) => (StatusCode::BAD_REQUEST, what),
        Missing::Forbidden(what) => (StatusCode::FORBIDDEN, what),
    };
    if html {
        // Rendered here, not on the blocking pool: the navigation's viewer is set around it.
        let _shown = ShownViewer::set(&current_viewer());
        let page = if code == StatusCode::FORBIDDEN {
            pages::message_page("Not allowed", "forbidden", &what)
        } else {
            pages::not_found(&what)
        };
        (
            code,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response()
    } else {
        (code, axum::Json(serde_json::json!({ "error": what }))).into_response()
    }
}

fn overview(ctx: &Ctx<'_>) -> Result<data::Overview, Missing> {
    let readiness = crate::health::readiness(Some(ctx.state), ctx.draining);
    Ok(data::overview(ctx.state, ctx.rates, readiness, &|r| {
        ctx.sees(r)
    }))
}

async fn overview_html(AxumState(s): AxumState<Shared>) -> Response {
    answer(s, overview, Some(pages::overview)).await
}

async fn overview_json(AxumState(s): AxumState<Shared>) -> Response {
    answer(s, overview, None).await
}

fn topic_list(q: ListQuery) -> impl FnOnce(&Ctx<'_>) -> Result<data::TopicList, Missing> {
    move |ctx| {
        Ok(data::topic_list(
            ctx.state,
            ctx.rates,
            q.page(),
            &q.filter(),
            &|r| ctx.sees(r),
        ))
    }
}

async fn topics_html(AxumState(s): AxumState<Shared>, Query(q): Query<ListQuery>) -> Response {
    answer(s, topic_list(q), Some(pages::topics)).await
}

async fn topics_json(AxumState(s): AxumState<Shared>, Query(q): Query<ListQuery>) -> Response {
    answer(s, topic_list(q), None).await
}

fn topic_detail(
    name: String,
    q: ListQuery,
) -> impl FnOnce(&Ctx<'_>) -> Result<data::TopicDetail, Missing> {
    move |ctx| {
        data::topic_detail(ctx.state, ctx.rates, &name, q.page(), &|r| ctx.sees(r))
            .ok_or_else(|| Missing::NotFound(format!("topic {name:?} does not exist")))
    }
}

async fn topic_html(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    answer(s, topic_detail(name, q), Some(pages::topic)).await
}

async fn topic_json(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    answer(s, topic_detail(name, q), None).await
}

fn group_list(q: ListQuery) -> impl FnOnce(&Ctx<'_>) -> Result<data::GroupList, Missing> {
    move |ctx| {
        Ok(data::group_list(ctx.state, q.page(), &q.filter(), &|r| {
            ctx.sees(r)
        }))
    }
}

async fn groups_html(AxumState(s): AxumState<Shared>, Query(q): Query<ListQuery>) -> Response {
    answer(s, group_list(q), Some(pages::groups)).await
}

async fn groups_json(AxumState(s): AxumState<Shared>, Query(q): Query<ListQuery>) -> Response {
    answer(s, group_list(q), None).await
}

fn group_detail(id: String) -> impl FnOnce(&Ctx<'_>) -> Result<data::GroupDetail, Missing> {
    move |ctx| {
        data::group_detail(ctx.state, &id, &|r| ctx.sees(r))
            .ok_or_else(|| Missing::NotFound(format!("group {id:?} does not exist")))
    }
}

async fn group_html(AxumState(s): AxumState<Shared>, Path(id): Path<String>) -> Response {
    answer(s, group_detail(id), Some(pages::group)).await
}

async fn group_json(AxumState(s): AxumState<Shared>, Path(id): Path<String>) -> Response {
    answer(s, group_detail(id), None).await
}

fn txns(q: ListQuery) -> impl FnOnce(&Ctx<'_>) -> Result<data::Transactions, Missing> {
    move |ctx| Ok(data::transactions(ctx.state, q.page(), &|r| ctx.sees(r)))
}

async fn txns_html(AxumState(s): AxumState<Shared>, Query(q): Query<ListQuery>) -> Response {
    answer(s, txns(q), Some(pages::transactions)).await
}

async fn txns_json(AxumState(s): AxumState<Shared>, Query(q): Query<ListQuery>) -> Response {
    answer(s, txns(q), None).await
}

/// The browser's answer and what the page needs besides (the query, the partition count).
#[derive(Serialize)]
struct Messages {
    #[serde(flatten)]
    browse: browse::Browse,
    #[serde(skip)]
    query: browse_page::BrowseQuery,
    #[serde(skip)]
    partitions: i32,
}

fn messages(
    name: String,
    q: browse_page::BrowseQuery,
) -> impl FnOnce(&Ctx<'_>) -> Result<Messages, Missing> {
    move |ctx| {
        use weir_broker::security::{acl::AclOperation, Resource};
        let t = ctx
            .state
            .topic(&name)
            .filter(|_| ctx.sees(Resource::Topic(&name)))
            .ok_or_else(|| Missing::NotFound(format!("topic {name:?} does not exist")))?;
        // Reading records is a Fetch: READ on the topic.
        if !ctx.viewer.may(AclOperation::Read, Resource::Topic(&name)) {
            return Err(Missing::Forbidden(format!(
                "not authorized to READ topic {name:?}"
            )));
        }
        let req = q.request().map_err(Missing::BadRequest)?;
        let b = browse::browse(ctx.state, &name, &req, &browse::Budget::default()).map_err(
            |e| match e {
                browse::BrowseError::UnknownTopic(_) => Missing::NotFound(e.to_string()),
                browse::BrowseError::UnknownPartition { .. }
                | browse::BrowseError::BadCursor(_) => Missing::BadRequest(e.to_string()),
                // Kept in the log with its cause; the page says what failed.
                e => {
                    tracing::warn!(topic = %name, error = %e, "message browser read failed");
                    Missing::BadRequest(e.to_string())
                }
            },
        )?;
        Ok(Messages {
            browse: b,
            query: q,
            partitions: t.partition_count(),
        })
    }
}

fn render_messages(m: &Messages) -> String {
    browse_page::page(&m.browse, &m.query, m.partitions)
}

async fn messages_html(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Query(q): Query<browse_page::BrowseQuery>,
) -> Response {
    answer(s, messages(name, q), Some(render_messages)).await
}

async fn messages_json(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Query(q): Query<browse_page::BrowseQuery>,
) -> Response {
    answer(s, messages(name, q), None).await
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[cfg(test)]
mod browse_tests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
pub(crate) mod tests;
