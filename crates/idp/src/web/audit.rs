//! `/audit`: the auditor console (filters, paging, CSV and JSON Lines exports) and
//! `/audit/api/events`, its JSON API. The console signs in through the provider like the
//! account page; every request checks the `auditor` role.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::accounts::{AccountHolder, OwnPage};
use crate::app::AppState;
use crate::audit::console::{self, ExportFormat, FilterForm};
use crate::authn::journey::page_lang;
use crate::error::Error;
use crate::i18n::{Lang, Tr};
use crate::oidc::error::OAuthError;
use crate::store::roles::{self, Role};
use crate::web::account::{current_holder, sign_in};
use crate::web::authorize::html;
use crate::web::login::{lang_hints, refused_page};
use crate::web::middleware::request_origin;

struct Row {
    seq: i64,
    at: String,
    event_type: String,
    actor: String,
    /// Who the actor is, when it is a person: email (member code).
    actor_named: Option<String>,
    subject: String,
    subject_named: Option<String>,
    client: String,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct ConsolePage<'a> {
    t: Tr,
    title: String,
    switch_href: &'static str,
    form: &'a FilterForm,
    error: Option<String>,
    rows: Vec<Row>,
    query: String,
    older: Option<String>,
    /// Back to the first page, from any other.
    newest: Option<String>,
}

/// The filter as a query string (without paging), for export and paging links.
fn query_of(form: &FilterForm) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("from", &form.from)
        .append_pair("until", &form.until)
        .append_pair("subject", &form.subject)
        .append_pair("client", &form.client)
        .append_pair("event_type", &form.event_type)
        .append_pair("ip", &form.ip)
        .finish()
}

fn forbidden(lang: Lang) -> HttpResponse {
    let mut response = refused_page(lang, "audit-forbidden");
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// The signed-in auditor, or the answer to give instead (sign in, or 403).
async fn auditor(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Result<AccountHolder, HttpResponse>, Error> {
    let lang = page_lang(&lang_hints(req, state.https));
    let Some(holder) = current_holder(req, state).await? else {
        return Ok(Err(sign_in(state, lang, OwnPage::AuditConsole)?));
    };
    if !console::is_auditor(state, &holder).await? {
        return Ok(Err(forbidden(lang)));
    }
    Ok(Ok(holder))
}

/// `GET /audit`.
pub async fn page(
    req: HttpRequest,
    form: web::Query<FilterForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    if let Err(answer) = auditor(&req, &state).await? {
        return Ok(answer);
    }
    let t = Tr(lang);
    let (rows, older, error) = match console::filter_of(&state, &form).await? {
        Err(problem) => (Vec::new(), None, Some(t.get(problem.message_id()))),
        Ok(filter) => {
            let (events, next) = console::page(&state, filter, form.before).await?;
            let people = console::people_named(&state, &events).await?;
            let named = |id: &Option<String>| id.as_ref().and_then(|id| people.get(id)).cloned();
            let rows = events
                .into_iter()
                .map(|e| Row {
                    seq: e.seq,
                    at: e.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    actor_named: named(&e.actor),
                    subject_named: named(&e.subject),
                    event_type: e.event_type,
                    actor: e.actor.unwrap_or_default(),
                    subject: e.subject.unwrap_or_default(),
                    client: e.client_id.unwrap_or_default(),
                    ip: e.ip.unwrap_or_default(),
                    detail: e.detail,
                })
                .collect();
            let older = next.map(|before| format!("/audit?{}&before={before}", query_of(&form)));
            (rows, older, None)
        }
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = html(
        status,
        ConsolePage {
            t,
            title: t.get("audit-title"),
            switch_href: match lang {
                Lang::FrCa => "/login/lang?to=en&next=audit",
                Lang::En => "/login/lang?to=fr-CA&next=audit",
            },
            form: &form,
            error,
            rows,
            query: query_of(&form),
            older,
            newest: form.before.map(|_| format!("/audit?{}", query_of(&form))),
        }
        .render(),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn export(
    req: HttpRequest,
    form: web::Query<FilterForm>,
    state: web::Data<AppState>,
    format: ExportFormat,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let holder = match auditor(&req, &state).await? {
        Ok(h) => h,
        Err(answer) => return Ok(answer),
    };
    let filter = match console::filter_of(&state, &form).await? {
        Ok(f) => f,
        Err(problem) => return Ok(refused_page(lang, problem.message_id())),
    };
    let body = console::export(&state, &holder, filter, format, &request_origin(&req)).await?;
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::JsonLines => "application/x-ndjson",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"guichet-audit-{}.{}\"",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
                format.name()
            ),
        ))
        .streaming(body))
}

/// `GET /audit/export.csv`.
pub async fn export_csv(
    req: HttpRequest,
    form: web::Query<FilterForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    export(req, form, state, ExportFormat::Csv).await
}

/// `GET /audit/export.jsonl`.
pub async fn export_jsonl(
    req: HttpRequest,
    form: web::Query<FilterForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    export(req, form, state, ExportFormat::JsonLines).await
}

/// `GET /audit/api/events`: the same filters as JSON, for an access token whose person holds
/// the `auditor` role. Answers `events` (newest first) and `next_before` for the next page.
pub async fn api_events(
    req: HttpRequest,
    form: web::Query<FilterForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let access = crate::web::staff_api::staff_token(&state, &req).await?;
    let sub = access.sub;
    let allowed = state
        .store
        .run(move |conn| roles::has(conn, &sub, Role::Auditor))
        .await?;
    if !allowed {
        return Err(OAuthError::insufficient_scope("The auditor role is required.").into());
    }
    let filter = match console::filter_of(&state, &form).await? {
        Ok(f) => f,
        Err(problem) => {
            return Err(OAuthError::invalid_request(match problem {
                console::FilterProblem::UnknownSubject => {
                    "No person has that email or member code."
                }
                _ => "Dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).",
            })
            .into())
        }
    };
    let (events, next) = console::page(&state, filter, form.before).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "events": events.iter().map(console::event_json).collect::<Vec<_>>(),
            "next_before": next,
        })))
}
