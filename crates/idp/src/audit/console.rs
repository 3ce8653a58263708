//! The auditor console's domain side: turning what an auditor typed into a filter, reading a
//! page of events, and exports (CSV, JSON Lines), each export itself an audit event. Only
//! people holding the `auditor` role get any of it.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use crate::accounts::AccountHolder;
use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::error::Error;
use crate::store::audit::{self, AuditEvent, AuditFilter};
use crate::store::roles::{self, Role};
use crate::store::users;

/// Events per console page.
pub const PAGE_SIZE: i64 = 50;
/// Rows read and formatted at a time by an export: it streams, so its memory stays the size of
/// one page whatever the export holds.
pub const EXPORT_PAGE: i64 = 1_000;

/// The body of an export on its way, page by page.
pub struct ExportStream(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl futures_core::Stream for ExportStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// The filter form as typed (every field optional).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct FilterForm {
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (UTC).
    #[serde(default)]
    pub from: String,
    /// Same forms; a bare date includes that whole day.
    #[serde(default)]
    pub until: String,
    /// Email or member code.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub ip: String,
    /// Paging: events older than this sequence number.
    pub before: Option<i64>,
}

/// Why a filter cannot be applied; each has a message for the auditor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterProblem {
    BadFrom,
    BadUntil,
    UnknownSubject,
}

impl FilterProblem {
    /// The message id.
    pub fn message_id(self) -> &'static str {
        match self {
            Self::BadFrom | Self::BadUntil => "audit-bad-date",
            Self::UnknownSubject => "audit-unknown-subject",
        }
    }
}

fn parse_time(text: &str, end_of_day: bool) -> Option<Option<NaiveDateTime>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(None);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M") {
        return Some(Some(t));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let day = if end_of_day { day.succ_opt()? } else { day };
    Some(day.and_hms_opt(0, 0, 0))
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.chars().take(256).collect())
}

/// Resolves the typed filter: dates, and the subject by email or member code.
pub async fn filter_of(
    state: &AppState,
    form: &FilterForm,
) -> Result<Result<AuditFilter, FilterProblem>, Error> {
    let Some(from) = parse_time(&form.from, false) else {
        return Ok(Err(FilterProblem::BadFrom));
    };
    let Some(until) = parse_time(&form.until, true) else {
        return Ok(Err(FilterProblem::BadUntil));
    };
    let subject = match non_empty(&form.subject) {
        None => None,
        Some(typed) => {
            let found = state
                .store
                .run(move |conn| {
                    Ok(match users::find_by_email(conn, &typed)? {
                        Some(u) => Some(u),
                        None => users::find_by_member_code(conn, &typed)?,
                    })
                })
                .await?;
            match found {
                Some(user) => Some(user.id),
                None => return Ok(Err(FilterProblem::UnknownSubject)),
            }
        }
    };
    Ok(Ok(AuditFilter {
        from,
        until,
        subject,
        client_id: non_empty(&form.client),
        event_type: non_empty(&form.event_type),
        ip: non_empty(&form.ip),
    }))
}

/// Whether the holder may use the console.
pub async fn is_auditor(state: &AppState, holder: &AccountHolder) -> Result<bool, Error> {
    let user = holder.access.sub.clone();
    Ok(state
        .store
        .run(move |conn| roles::has(conn, &user, Role::Auditor))
        .await?)
}

/// One page of events, newest first, and the `before` of the next page if there is one.
pub async fn page(
    state: &AppState,
    filter: AuditFilter,
    before: Option<i64>,
) -> Result<(Vec<AuditEvent>, Option<i64>), Error> {
    let mut rows = state
        .store
        .run(move |conn| audit::search(conn, &filter, before, PAGE_SIZE + 1))
        .await?;
    let next = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    Ok((rows, next))
}

/// Who the person ids among `events`' subjects and actors are, as auditors read them: the
/// contact email, with the member code when there is one. The log keeps ids, which stay the
/// same when an email changes; the console names people as they are now.
pub async fn people_named(
    state: &AppState,
    events: &[AuditEvent],
) -> Result<std::collections::HashMap<String, String>, Error> {
    let mut ids: Vec<String> = events
        .iter()
        .flat_map(|e| [e.subject.clone(), e.actor.clone()])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let found = state
        .store
        .run(move |conn| {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            users::emails_and_codes(conn, &ids)
        })
        .await?;
    Ok(found
        .into_iter()
        .map(|(id, email, code)| {
            let label = match code {
                Some(code) => format!("{email} ({code})"),
                None => email,
            };
            (id, label)
        })
        .collect())
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    /// The `format` value in the audit event, and the file extension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }
}

/// One event as exported and as the JSON API answers it.
pub fn event_json(e: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "chain_index": e.chain_index,
        "id": e.id,
        "occurred_at": e.occurred_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "event_type": e.event_type,
        "actor": e.actor,
        "subject": e.subject,
        "client_id": e.client_id,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "request_id": e.request_id,
        "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or(serde_json::Value::String(e.detail.clone())),
        "row_hash": e.row_hash.as_deref().map(crate::crypto::hex),
    })
}

const CSV_HEADER: [&str; 13] = [
    "seq",
    "chain_index",
    "id",
    "occurred_at",
    "event_type",
    "actor",
    "subject",
    "client_id",
    "ip",
    "user_agent",
    "request_id",
    "detail",
    "row_hash",
];

/// Every event matching `filter` that exists when the export is asked for, newest first, in
/// `format`. The export is recorded first, so none leaves unrecorded: an `audit.exported`
/// event with the format, the filter, `rows` (how many it holds) and `through_seq` (the newest
/// row it can hold). Then the rows stream out page by page ([`EXPORT_PAGE`]), each page read
/// and formatted on the blocking pool. A page that cannot be read ends the body with an error,
/// so a truncated file is never taken for a whole one.
pub async fn export(
    state: &AppState,
    holder: &AccountHolder,
    filter: AuditFilter,
    format: ExportFormat,
    origin: &RequestOrigin,
) -> Result<ExportStream, Error> {
    let query = filter.clone();
    let (through, rows) = state
        .store
        .run(move |conn| {
            let through = audit::last_seq(conn)?;
            let rows = match through {
                Some(seq) => audit::count_matching(conn, &query, seq)?,
                None => 0,
            };
            Ok((through, rows))
        })
        .await?;
    let event = origin.event(
        "audit.exported",
        Some(holder.access.sub.clone()),
        None,
        None,
        &serde_json::json!({
            "format": format.name(),
            "filter": filter,
            "rows": rows,
            "through_seq": through,
        }),
    );
    state.audit.record(event).await?;
    let (pages, body) = tokio::sync::mpsc::channel(2);
    let store = state.store.clone();
    tokio::spawn(async move {
        if format == ExportFormat::Csv {
            let header = render(&[], format, true).map_err(std::io::Error::other);
            if pages.send(header).await.is_err() {
                return;
            }
        }
        // Rows older than `before`: the first page starts just above the newest row.
        let mut before = through.map(|seq| seq + 1);
        while let Some(seq) = before {
            let query = filter.clone();
            let page = store
                .run(move |conn| {
                    let rows = audit::search(conn, &query, Some(seq), EXPORT_PAGE)?;
                    let chunk = render(&rows, format, false)
                        .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
                    Ok((chunk, rows.last().map(|r| r.seq)))
                })
                .await;
            let chunk = match page {
                Ok((chunk, last)) => {
                    before = last;
                    chunk
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit export cut short");
                    let _ = pages.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            if !chunk.is_empty() && pages.send(Ok(chunk)).await.is_err() {
                return; // the auditor went away
            }
        }
    });
    Ok(ExportStream(body))
}

/// `rows` in `format`, with the CSV header line first when `header` is set.
fn render(rows: &[AuditEvent], format: ExportFormat, header: bool) -> Result<bytes::Bytes, Error> {
    Ok(bytes::Bytes::from(match format {
        ExportFormat::JsonLines => {
            let mut out = Vec::new();
            for row in rows {
                out.extend(event_json(row).to_string().into_bytes());
                out.push(b'\n');
            }
            out
        }
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            let csv_error = |e: csv::Error| Error::Io(std::io::Error::other(e.to_string()));
            if header {
                writer.write_record(CSV_HEADER).map_err(csv_error)?;
            }
            for e in rows {
                let hash = e
                    .row_hash
                    .as_deref()
                    .map(crate::crypto::hex)
                    .unwrap_or_default();
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                writer
                    .write_record([
                        e.seq.to_string(),
                        e.chain_index.map(|i| i.to_string()).unwrap_or_default(),
                        e.id.clone(),
                        e.occurred_at
                            .and_utc()
                            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        e.event_type.clone(),
                        opt(&e.actor),
                        opt(&e.subject),
                        opt(&e.client_id),
                        opt(&e.ip),
                        opt(&e.user_agent),
                        opt(&e.request_id),
                        e.detail.clone(),
                        hash,
                    ])
                    .map_err(csv_error)?;
            }
            writer
                .into_inner()
                .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?
        }
    }))
}
