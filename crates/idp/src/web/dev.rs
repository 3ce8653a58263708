//! `GET /dev/outbox`: the development outbox, readable in the browser when `dev_mode` is on
//! (the embedded default of `cargo run -p demo`); 404 otherwise.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::AppState;
use crate::authn::journey::page_lang;
use crate::i18n::Tr;
use crate::web::authorize::html;
use crate::web::login::lang_hints;

/// One message as the page shows it.
struct Shown {
    recipient: String,
    subject: String,
    text: String,
    created_at: String,
    locale: &'static str,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    t: Tr,
    title: String,
    switch_href: &'static str,
    messages: Vec<Shown>,
}

/// The outbox page.
pub async fn outbox(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.settings.dev_mode {
        return HttpResponse::NotFound().finish();
    }
    let Some(messages) = state.mail.outbox_messages().await else {
        return HttpResponse::NotFound().finish();
    };
    let messages = match messages {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the development outbox");
            Vec::new()
        }
    };
    let shown = messages
        .iter()
        .take(100)
        .map(|job| {
            let composed = mail_worker::compose::compose(job);
            Shown {
                recipient: job.recipient.clone(),
                subject: composed
                    .as_ref()
                    .map_or_else(|e| e.to_string(), |c| c.subject.clone()),
                text: composed.map(|c| c.text).unwrap_or_default(),
                created_at: job.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                locale: match job.locale {
                    mail_queue::Locale::FrCa => "fr-CA",
                    mail_queue::Locale::En => "en",
                },
            }
        })
        .collect();
    let t = Tr(page_lang(&lang_hints(&req, state.https)));
    html(
        StatusCode::OK,
        OutboxPage {
            t,
            title: "Outbox".into(),
            switch_href: "",
            messages: shown,
        }
        .render(),
    )
}
