//! The web console (docs/design/operability.md §4): server-rendered pages over the broker's
//! memory, each with a JSON twin under `/api` built from the same struct.
//!
//! Every page is built and rendered on the blocking pool (it walks the topic table and the
//! coordinators, which take `std` locks) and answers with a `Server-Timing` header giving
//! the time it took, which the browser test and the scale measurement read.
//!
//! Writes are POSTs, each checked by the CSRF middleware ([`csrf::guard`]) before its
//! handler: produce and config edits (`actions.rs`), offset resets (`reset.rs`). The live
//! tail (`tail.rs`) is a GET answering Server-Sent Events; the pipelines page (`pipelines.rs`)
//! reads the SQL engine through a trait the binary implements.
//!
//! Each page is built for the request's viewer (`crate::auth`): what it may not DESCRIBE
//! is left out, and the navigation shows who is logged in.

pub mod actions;
mod assignment;
pub mod browse;
mod browse_page;
pub mod csrf;
pub mod data;
mod forms;
pub mod html;
pub(crate) mod pages;
pub mod pipelines;
pub mod rates;
pub mod reset;
pub mod svg;
pub mod tail;

use std::time::Instant;

use axum::extract::{Form, Path, Query, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
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
        .route("/pipelines", get(pipelines_html))
        .route("/api/pipelines", get(pipelines_json))
        .route("/topics/{name}/produce", post(produce_html))
        .route("/api/topics/{name}/produce", post(produce_json))
        .route("/topics/{name}/configs", post(configs_html))
        .route("/api/topics/{name}/configs", post(configs_json))
        .route("/groups/{id}/reset", post(reset_html))
        .route("/api/groups/{id}/reset", post(reset_json))
        .route("/topics/{name}/tail", get(tail))
        .route("/api/topics/{name}/tail", get(tail))
        .route("/api/tails", get(tails))
        .route("/api/csrf", get(csrf_token))
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
    /// The SQL engine's view, when the binary has one.
    pub pipelines: Option<&'a dyn pipelines::PipelineSource>,
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
    answer_with(shared, build, render).await
}

/// [`answer`] with a closure as the renderer (a page with forms needs the CSRF token).
async fn answer_with<T, B, R>(shared: Shared, build: B, render: Option<R>) -> Response
where
    T: Serialize + Send + 'static,
    B: FnOnce(&Ctx<'_>) -> Result<T, Missing> + Send + 'static,
    R: FnOnce(&T) -> String + Send + 'static,
{
    let started = Instant::now();
    let draining = *shared.draining.borrow();
    let Some(state) = shared.state.get().cloned() else {
        return missing(Missing::Recovering, render.is_some());
    };
    let rates = shared.rates.clone();
    let source = shared.pipelines.get().cloned();
    let html = render.is_some();
    let viewer = current_viewer();
    let done = tokio::task::spawn_blocking(move || {
        let _shown = ShownViewer::set(&viewer);
        let ctx = Ctx {
            state: &state,
            rates: &rates,
            draining,
            pipelines: source.as_deref(),
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

/// The request's CSRF token for its forms, and the cookie to set when it had none.
fn form_token(shared: &Shared, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let (binding, set) = csrf::binding_for(&shared.csrf, headers);
    (shared.csrf.token(&binding), set)
}

fn with_cookie(mut resp: Response, set: Option<HeaderValue>) -> Response {
    if let Some(v) = set {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn topic_html(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (token, set) = form_token(&s, &headers);
    let render = move |d: &data::TopicDetail| pages::topic(d, &token);
    with_cookie(
        answer_with(s, topic_detail(name, q), Some(render)).await,
        set,
    )
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

async fn group_html(
    AxumState(s): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (token, set) = form_token(&s, &headers);
    let render = move |d: &data::GroupDetail| pages::group(d, &token);
    with_cookie(answer_with(s, group_detail(id), Some(render)).await, set)
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

fn pipelines_data(ctx: &Ctx<'_>) -> Result<pipelines::Pipelines, Missing> {
    Ok(pipelines::pipelines(ctx.pipelines, ctx.rates))
}

async fn pipelines_html(AxumState(s): AxumState<Shared>) -> Response {
    answer(s, pipelines_data, Some(forms::pipelines_page)).await
}

async fn pipelines_json(AxumState(s): AxumState<Shared>) -> Response {
    answer(s, pipelines_data, None).await
}

fn html_page(code: StatusCode, page: String) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

fn json_error(code: StatusCode, what: String) -> Response {
    (code, Json(serde_json::json!({ "error": what }))).into_response()
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn produce_status(e: &actions::ProduceError) -> StatusCode {
    match e {
        actions::ProduceError::UnknownTopic(_) => StatusCode::NOT_FOUND,
        e if e.is_bad_request() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn produce_html(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Form(f): Form<actions::ProduceForm>,
) -> Response {
    let Some(state) = s.state.get().cloned() else {
        return missing(Missing::Recovering, true);
    };
    match actions::produce(&state, &name, &f).await {
        Ok(p) => html_page(StatusCode::OK, forms::produced(&p)),
        Err(e) => html_page(
            produce_status(&e),
            forms::action_error(
                "Produce refused",
                &e.to_string(),
                &format!("/topics/{}", html::path_segment(&name)),
            ),
        ),
    }
}

async fn produce_json(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Json(f): Json<actions::ProduceForm>,
) -> Response {
    let Some(state) = s.state.get().cloned() else {
        return missing(Missing::Recovering, false);
    };
    match actions::produce(&state, &name, &f).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => json_error(produce_status(&e), e.to_string()),
    }
}

fn alter_status(e: &weir_broker::config_ops::AlterTopicError) -> StatusCode {
    use weir_broker::config_ops::AlterTopicErrorKind as K;
    match e.kind {
        K::UnknownTopic => StatusCode::NOT_FOUND,
        K::InvalidConfig => StatusCode::BAD_REQUEST,
        K::Broker => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn configs_html(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Form(f): Form<actions::ConfigForm>,
) -> Response {
    let Some(state) = s.state.get().cloned() else {
        return missing(Missing::Recovering, true);
    };
    match actions::alter_configs(&state, &name, &f).await {
        Ok(c) => html_page(StatusCode::OK, forms::configs_altered(&c)),
        Err(e) => html_page(
            alter_status(&e),
            forms::action_error(
                "Config change refused",
                &e.to_string(),
                &format!("/topics/{}", html::path_segment(&name)),
            ),
        ),
    }
}

async fn configs_json(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Json(f): Json<actions::ConfigForm>,
) -> Response {
    let Some(state) = s.state.get().cloned() else {
        return missing(Missing::Recovering, false);
    };
    match actions::alter_configs(&state, &name, &f).await {
        Ok(c) => Json(c).into_response(),
        Err(e) => json_error(alter_status(&e), e.to_string()),
    }
}

/// Plans a reset on the blocking pool (a timestamp reads the time index), then applies it
/// when asked.
async fn run_reset(
    shared: &Shared,
    id: &str,
    f: reset::ResetForm,
) -> Result<reset::ResetPlan, (StatusCode, String)> {
    let Some(state) = shared.state.get().cloned() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is recovering its logs".to_string(),
        ));
    };
    let apply = f.apply();
    let (st, group) = (state.clone(), id.to_string());
    let planned = tokio::task::spawn_blocking(move || reset::plan(&st, &group, &f)).await;
    let mut plan = match planned {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err((status(e.status()), e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "planning a reset panicked");
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_string(),
            ));
        }
    };
    if apply {
        reset::apply(&state, &mut plan)
            .await
            .map_err(|e| (status(e.status()), e.to_string()))?;
    }
    Ok(plan)
}

async fn reset_html(
    AxumState(s): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<reset::ResetForm>,
) -> Response {
    let (token, set) = form_token(&s, &headers);
    let resp = match run_reset(&s, &id, f).await {
        Ok(plan) => html_page(StatusCode::OK, forms::reset_plan(&plan, &token)),
        Err((code, what)) => html_page(
            code,
            forms::action_error(
                "Reset refused",
                &what,
                &format!("/groups/{}", html::path_segment(&id)),
            ),
        ),
    };
    with_cookie(resp, set)
}

async fn reset_json(
    AxumState(s): AxumState<Shared>,
    Path(id): Path<String>,
    Json(f): Json<reset::ResetForm>,
) -> Response {
    match run_reset(&s, &id, f).await {
        Ok(plan) => Json(plan).into_response(),
        Err((code, what)) => json_error(code, what),
    }
}

async fn tail(
    AxumState(s): AxumState<Shared>,
    Path(name): Path<String>,
    Query(q): Query<browse_page::BrowseQuery>,
) -> Response {
    let Some(state) = s.state.get().cloned() else {
        return missing(Missing::Recovering, false);
    };
    let req = match q.request() {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let req = tail::TailRequest {
        topic: name,
        partition: req.partition,
        filter: req.filter,
    };
    match tail::open(state, s.tails.clone(), req) {
        Ok(stream) => stream,
        Err(e) => json_error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn tails(AxumState(s): AxumState<Shared>) -> Response {
    Json(s.tails.counts()).into_response()
}

/// A CSRF cookie and its token, for scripts using the JSON API's POSTs.
async fn csrf_token(AxumState(s): AxumState<Shared>, headers: HeaderMap) -> Response {
    let (token, set) = form_token(&s, &headers);
    let body = serde_json::json!({
        "token": token,
        "header": csrf::HEADER,
        "field": csrf::FIELD,
        "cookie": csrf::COOKIE,
    });
    with_cookie(
        ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        set,
    )
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
mod actions_tests;
#[cfg(test)]
mod browse_tests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
pub(crate) mod tests;
