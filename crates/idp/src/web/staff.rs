//! `/staff`: the helpdesk and administration console, `/staff/api/...` its JSON API, and
//! `/email-change`, where a person confirms a new contact email with the code sent to it.
//!
//! The console signs in through the provider like the account page. Every request checks the
//! person's roles: auditors may look, the helpdesk may also act on people, administrators may
//! also manage clients and signing keys. Every form carries a CSRF token bound to the
//! console's access token, and every action a written reason.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::{AccountHolder, OwnPage};
use crate::app::AppState;
use crate::authn::journey::page_lang;
use crate::error::Error;
use crate::i18n::{Lang, Tr};
use crate::staff::{
    self, portals, Actor, PersonAction, PersonQuery, PersonStatus, Reason, Refusal, StaffRights,
};
use crate::store::users::MfaMethod;
use crate::web::account::{current_holder, sign_in};
use crate::web::authorize::{html, see_other};
use crate::web::cookies;
use crate::web::login::{lang_hints, refused_page};
use crate::web::middleware::request_origin;

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn switch(lang: Lang, next: &str) -> String {
    match lang {
        Lang::FrCa => format!("/login/lang?to=en&next={next}"),
        Lang::En => format!("/login/lang?to=fr-CA&next={next}"),
    }
}

fn forbidden(lang: Lang) -> HttpResponse {
    let mut response = refused_page(lang, "staff-forbidden");
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// The signed-in staff member, their rights, and the actor their actions are recorded as.
struct StaffMember {
    holder: AccountHolder,
    rights: StaffRights,
    actor: Actor,
}

/// Who is at the console, or the answer to give instead: sign in, or 403 when `allowed` does
/// not hold for their rights.
async fn staff_member(
    req: &HttpRequest,
    state: &AppState,
    allowed: fn(&StaffRights) -> bool,
) -> Result<Result<StaffMember, HttpResponse>, Error> {
    let lang = page_lang(&lang_hints(req, state.https));
    let Some(holder) = current_holder(req, state).await? else {
        return Ok(Err(sign_in(state, lang, OwnPage::StaffConsole)?));
    };
    let sub = holder.access.sub.clone();
    let rights = state
        .store
        .run(move |conn| staff::rights_of(conn, &sub))
        .await?;
    if !allowed(&rights) {
        return Ok(Err(forbidden(lang)));
    }
    let actor = Actor {
        id: holder.access.sub.clone(),
        origin: request_origin(req),
    };
    Ok(Ok(StaffMember {
        holder,
        rights,
        actor,
    }))
}

/// The staff member who sent a form, if their rights allow it and the form carries their
/// CSRF token; otherwise the answer to give (sign in, 403, or "the form has expired").
async fn form_sender(
    req: &HttpRequest,
    state: &AppState,
    allowed: fn(&StaffRights) -> bool,
    csrf: &str,
) -> Result<Result<StaffMember, HttpResponse>, Error> {
    let member = match staff_member(req, state, allowed).await? {
        Ok(m) => m,
        Err(answer) => return Ok(Err(answer)),
    };
    if !member.holder.csrf_matches(state, csrf) {
        let lang = page_lang(&lang_hints(req, state.https));
        return Ok(Err(refused_page(lang, "account-form-expired")));
    }
    Ok(Ok(member))
}

fn can_read(r: &StaffRights) -> bool {
    r.read
}
fn can_act(r: &StaffRights) -> bool {
    r.act
}
fn is_admin(r: &StaffRights) -> bool {
    r.admin
}

struct PersonRow {
    id: String,
    name: String,
    email: String,
    member_code: String,
    state: String,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct SearchPage {
    t: Tr,
    title: String,
    switch_href: String,
    query: String,
    error: Option<String>,
    searched: bool,
    people: Vec<PersonRow>,
    /// More people match than are listed.
    more: Option<String>,
}

fn state_label(t: Tr, state: &str) -> String {
    t.get(&format!("staff-state-{}", state.replace('_', "-")))
}

/// `?q=`: what the search typed.
#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /staff`: search people by email, member code or name.
pub async fn search(
    req: HttpRequest,
    query: web::Query<SearchQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    if let Err(answer) = staff_member(&req, &state, can_read).await? {
        return Ok(answer);
    }
    let t = Tr(lang);
    let typed = query.q.trim().to_string();
    let (people, more, error) = if typed.is_empty() {
        (Vec::new(), None, None)
    } else {
        match PersonQuery::parse(&typed) {
            Err(refusal) => (Vec::new(), None, Some(t.get(refusal.message_id()))),
            Ok(parsed) => {
                let hasher = state.hasher.clone();
                let found = state
                    .store
                    .run(move |conn| staff::find_with_status(conn, &hasher, &parsed))
                    .await?;
                let rows = found
                    .people
                    .iter()
                    .map(|s| PersonRow {
                        id: s.user.id.clone(),
                        name: format!("{} {}", s.user.given_name, s.user.family_name),
                        email: s.user.email.clone(),
                        member_code: s.user.member_code.clone().unwrap_or_default(),
                        state: state_label(t, s.state()),
                    })
                    .collect();
                let more = found
                    .more
                    .then(|| t.arg("staff-more", "limit", staff::SEARCH_LIMIT));
                (rows, more, None)
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(no_store(html(
        status,
        SearchPage {
            t,
            title: t.get("staff-title"),
            switch_href: switch(lang, "staff"),
            searched: !typed.is_empty() && error.is_none(),
            query: typed,
            error,
            people,
            more,
        }
        .render(),
    )))
}

struct SignInRow {
    portal: String,
    at: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "staff_person.html")]
struct PersonPage {
    t: Tr,
    title: String,
    switch_href: String,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    can_act: bool,
    id: String,
    name: String,
    email: String,
    member_code: String,
    locale: String,
    state: String,
    locked_until: Option<String>,
    method: String,
    must_reset: bool,
    disabled: bool,
    /// A first-login invitation can be sent: the person has not activated (nor been disabled).
    can_invite: bool,
    roles: String,
    live_sessions: usize,
    pending_email: Option<String>,
    sign_ins: Vec<SignInRow>,
}

fn person_page(
    lang: Lang,
    member: &StaffMember,
    state: &AppState,
    s: &PersonStatus,
    notice: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    let t = Tr(lang);
    let u = &s.user;
    let when = |at| super::local_time(&state.time_zone, at);
    let page = PersonPage {
        t,
        title: format!("{} {}", u.given_name, u.family_name),
        switch_href: switch(lang, "staff"),
        csrf: member.holder.csrf(state),
        notice,
        can_act: member.rights.act,
        id: u.id.clone(),
        name: format!("{} {}", u.given_name, u.family_name),
        email: u.email.clone(),
        member_code: u
            .member_code
            .clone()
            .unwrap_or_else(|| t.get("account-none")),
        locale: u.locale.clone(),
        state: state_label(t, s.state()),
        locked_until: s.locked_until.map(when),
        method: t.get(match u.mfa_method {
            MfaMethod::Totp => "account-method-totp",
            MfaMethod::Email => "account-method-email",
            MfaMethod::None => "account-method-none",
        }),
        must_reset: u.must_reset,
        disabled: u.disabled,
        can_invite: !u.disabled && (u.must_reset || u.password_hash.is_none()),
        roles: s
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        live_sessions: s.live_sessions,
        pending_email: s.pending_email.as_ref().map(|c| c.new_email.clone()),
        sign_ins: s
            .sign_ins
            .iter()
            .map(|e| SignInRow {
                portal: e.portal.clone(),
                at: when(e.at),
                ip: e.ip.clone().unwrap_or_default(),
            })
            .collect(),
        error,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    no_store(html(status, page.render()))
}

async fn status_of(state: &AppState, id: String) -> Result<Option<PersonStatus>, Error> {
    let hasher = state.hasher.clone();
    Ok(state
        .store
        .run(move |conn| staff::status(conn, &hasher, &id, crate::store::now()))
        .await?)
}

fn not_found(lang: Lang) -> HttpResponse {
    let mut response = refused_page(lang, "staff-no-such-person");
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// `?done=`: what the previous action did.
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /staff/people/{id}`: where the person's account stands, and the actions.
pub async fn person(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match staff_member(&req, &state, can_read).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let Some(status) = status_of(&state, path.into_inner()).await? else {
        return Ok(not_found(lang));
    };
    let notice = query
        .done
        .as_deref()
        .filter(|d| PersonAction::SEGMENTS.contains(d))
        .map(|d| Tr(lang).get(&format!("staff-done-{d}")));
    Ok(person_page(lang, &member, &state, &status, notice, None))
}

/// Fields of every action form.
#[derive(Deserialize)]
pub struct ActionFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    /// The new contact email (email change only).
    #[serde(default)]
    email: String,
}

/// `POST /staff/people/{id}/{action}`.
pub async fn person_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<ActionFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match form_sender(&req, &state, can_act, &form.csrf).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let (id, segment) = path.into_inner();
    let Some(action) = PersonAction::parse(&segment, &form.email) else {
        return Ok(not_found(lang));
    };
    let outcome = match Reason::parse(&form.reason) {
        Err(r) => Err(r),
        Ok(reason) => staff::act(&state, &member.actor, &id, action, &reason).await?,
    };
    match outcome {
        Ok(()) => Ok(see_other(&format!("/staff/people/{id}?done={segment}")).finish()),
        Err(refusal) => {
            let Some(status) = status_of(&state, id).await? else {
                return Ok(not_found(lang));
            };
            let message = Tr(lang).get(refusal.message_id());
            Ok(person_page(
                lang,
                &member,
                &state,
                &status,
                None,
                Some(message),
            ))
        }
    }
}

struct ClientRow {
    id: String,
    name: String,
    kind: String,
    enabled: bool,
    configured: bool,
    redirect_uris: String,
}

struct KeyRow {
    kid: String,
    alg: String,
    state: String,
}

#[derive(Template)]
#[template(path = "staff_clients.html")]
struct ClientsPage {
    t: Tr,
    title: String,
    switch_href: String,
    csrf: String,
    can_manage: bool,
    notice: Option<String>,
    error: Option<String>,
    /// A secret just created, shown this once.
    secret: Option<(String, String)>,
    clients: Vec<ClientRow>,
    keys: Vec<KeyRow>,
}

async fn clients_page(
    lang: Lang,
    member: &StaffMember,
    state: &AppState,
    notice: Option<String>,
    error: Option<String>,
    secret: Option<(String, String)>,
) -> Result<HttpResponse, Error> {
    let t = Tr(lang);
    let configured = state.settings.configured_client_ids();
    let (listed, keys) = state
        .store
        .run(|conn| {
            Ok((
                crate::store::clients::list(conn)?,
                crate::store::signing_keys::list(conn)?,
            ))
        })
        .await?;
    let at = crate::store::now();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(no_store(html(
        status,
        ClientsPage {
            t,
            title: t.get("admin-title"),
            switch_href: switch(lang, "clients"),
            csrf: member.holder.csrf(state),
            can_manage: member.rights.admin,
            notice,
            error,
            secret,
            clients: listed
                .into_iter()
                .map(|c| ClientRow {
                    configured: configured.contains(&c.id),
                    redirect_uris: c.redirect_uris.join("\n"),
                    id: c.id,
                    name: c.name,
                    kind: c.kind,
                    enabled: c.enabled,
                })
                .collect(),
            keys: keys
                .into_iter()
                .filter(|k| k.publish_until.is_none_or(|until| until > at))
                .map(|k| KeyRow {
                    state: if k.retired_at.is_none() {
                        "active"
                    } else {
                        "retired"
                    }
                    .into(),
                    kid: k.kid,
                    alg: k.alg,
                })
                .collect(),
        }
        .render(),
    )))
}

/// `GET /staff/clients`: registered portals and signing keys.
pub async fn clients(
    req: HttpRequest,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match staff_member(&req, &state, can_read).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let notice = query
        .done
        .as_deref()
        .filter(|d| CLIENT_NOTICES.contains(d))
        .map(|d| Tr(lang).get(&format!("admin-done-{d}")));
    clients_page(lang, &member, &state, notice, None, None).await
}

const CLIENT_NOTICES: [&str; 4] = ["redirect-uris", "disable", "enable", "keys"];

/// Fields of the client forms.
#[derive(Deserialize)]
pub struct ClientFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    backchannel_logout_uri: String,
}

/// `POST /staff/clients`: registers a portal; a confidential client's secret is shown once.
pub async fn create_client(
    req: HttpRequest,
    form: web::Form<ClientFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match form_sender(&req, &state, is_admin, &form.csrf).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let new = portals::NewPortal {
        id: form.id.clone(),
        name: form.name.clone(),
        public: form.kind == "public",
        redirect_uris: portals::uri_list(&form.redirect_uris),
        post_logout_redirect_uris: portals::uri_list(&form.post_logout_redirect_uris),
        backchannel_logout_uri: Some(form.backchannel_logout_uri.trim().to_string())
            .filter(|u| !u.is_empty()),
    };
    let outcome = match Reason::parse(&form.reason) {
        Err(r) => Err(r),
        Ok(reason) => {
            let (hasher, configured, actor) = (
                state.hasher.clone(),
                state.settings.configured_client_ids(),
                member.actor.clone(),
            );
            let new = new.clone();
            state
                .store
                .run(move |conn| portals::create(conn, &hasher, &configured, &actor, &new, &reason))
                .await?
        }
    };
    clients_outcome(
        lang,
        &member,
        &state,
        outcome.map(|secret| (new.id.clone(), secret)),
    )
    .await
}

async fn clients_outcome(
    lang: Lang,
    member: &StaffMember,
    state: &AppState,
    outcome: Result<(String, Option<String>), Refusal>,
) -> Result<HttpResponse, Error> {
    let t = Tr(lang);
    match outcome {
        Ok((id, secret)) => {
            let notice = Some(t.get("admin-done-saved"));
            clients_page(lang, member, state, notice, None, secret.map(|s| (id, s))).await
        }
        Err(refusal) => {
            let mut message = t.get(refusal.message_id());
            if let Refusal::InvalidClient(detail) = &refusal {
                message = format!("{message} ({detail})");
            }
            clients_page(lang, member, state, None, Some(message), None).await
        }
    }
}

/// `POST /staff/clients/{id}/{action}`: `secret`, `redirect-uris`, `disable`, `enable`.
pub async fn client_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<ClientFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match form_sender(&req, &state, is_admin, &form.csrf).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let (id, action) = path.into_inner();
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(r) => return clients_outcome(lang, &member, &state, Err(r)).await,
    };
    let (hasher, configured, actor) = (
        state.hasher.clone(),
        state.settings.configured_client_ids(),
        member.actor.clone(),
    );
    let client_id = id.clone();
    match action.as_str() {
        "secret" => {
            let outcome = state
                .store
                .run(move |conn| {
                    portals::rotate_secret(conn, &hasher, &configured, &actor, &client_id, &reason)
                })
                .await?;
            state.client_cache.forget(&id);
            clients_outcome(lang, &member, &state, outcome.map(|s| (id, Some(s)))).await
        }
        "redirect-uris" => {
            let (uris, post) = (
                portals::uri_list(&form.redirect_uris),
                portals::uri_list(&form.post_logout_redirect_uris),
            );
            let outcome = state
                .store
                .run(move |conn| {
                    portals::set_redirect_uris(
                        conn,
                        &configured,
                        &actor,
                        &client_id,
                        uris,
                        post,
                        &reason,
                    )
                })
                .await?;
            state.client_cache.forget(&id);
            match outcome {
                Ok(()) => Ok(see_other("/staff/clients?done=redirect-uris").finish()),
                Err(r) => clients_outcome(lang, &member, &state, Err(r)).await,
            }
        }
        "disable" | "enable" => {
            let enabled = action == "enable";
            let outcome = state
                .store
                .run(move |conn| {
                    portals::set_enabled(conn, &configured, &actor, &client_id, enabled, &reason)
                })
                .await?;
            state.client_cache.forget(&id);
            match outcome {
                Ok(()) => Ok(see_other(&format!("/staff/clients?done={action}")).finish()),
                Err(r) => clients_outcome(lang, &member, &state, Err(r)).await,
            }
        }
        _ => Ok(not_found(lang)),
    }
}

/// `POST /staff/keys/rotate`: a new signing key for every algorithm.
pub async fn rotate_keys(
    req: HttpRequest,
    form: web::Form<ClientFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match form_sender(&req, &state, is_admin, &form.csrf).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(r) => return clients_outcome(lang, &member, &state, Err(r)).await,
    };
    staff::rotate_signing_keys(&state, &member.actor, &reason).await?;
    Ok(see_other("/staff/clients?done=keys").finish())
}

#[derive(Template)]
#[template(path = "email_change.html")]
struct EmailChangePage {
    t: Tr,
    title: String,
    switch_href: String,
    csrf: String,
    email: String,
    error: Option<String>,
    done: bool,
}

/// Fields of the email change confirmation.
#[derive(Deserialize)]
pub struct EmailChangeFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    code: String,
}

/// How long the confirmation form stays usable.
const EMAIL_CHANGE_FORM_SECS: i64 = 3600;

/// The confirmation page, with a fresh CSRF binding cookie and its token.
fn email_change_page(
    state: &AppState,
    lang: Lang,
    email: String,
    error: Option<String>,
    done: bool,
) -> HttpResponse {
    let t = Tr(lang);
    let binding = crate::oidc::flow::random_token();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = no_store(html(
        status,
        EmailChangePage {
            t,
            title: t.get("email-change-title"),
            switch_href: switch(lang, "email-change"),
            csrf: crate::oidc::flow::csrf_token(&state.hasher, &binding),
            email,
            error,
            done,
        }
        .render(),
    ));
    let _ = response.add_cookie(&cookies::build(
        cookies::EMAIL_CHANGE,
        binding,
        state.https,
        EMAIL_CHANGE_FORM_SECS,
    ));
    response
}

/// `GET /email-change`.
pub async fn email_change_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    Ok(email_change_page(&state, lang, String::new(), None, false))
}

/// `POST /email-change`: the new address and the code sent to it. The form needs no session:
/// the code, sent only to the new address, is the proof; wrong codes count against it.
pub async fn email_change_submit(
    req: HttpRequest,
    form: web::Form<EmailChangeFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let bound = cookies::value(&req, cookies::EMAIL_CHANGE, state.https).is_some_and(|binding| {
        crate::oidc::flow::csrf_matches(&state.hasher, &binding, &form.csrf)
    });
    if !bound {
        let message = Tr(lang).get("email-change-form-expired");
        return Ok(email_change_page(
            &state,
            lang,
            form.email.clone(),
            Some(message),
            false,
        ));
    }
    let (hasher, origin) = (state.hasher.clone(), request_origin(&req));
    let (email, code) = (form.email.trim().to_string(), form.code.clone());
    let typed = email.clone();
    let outcome = state
        .store
        .run(move |conn| staff::confirm_email_change(conn, &hasher, &origin, &typed, &code))
        .await?;
    Ok(match outcome {
        Ok(_) => email_change_page(&state, lang, email, None, true),
        Err(refusal) => {
            let message = Tr(lang).get(refusal.message_id());
            email_change_page(&state, lang, email, Some(message), false)
        }
    })
}

struct PolicyRow {
    name: &'static str,
    label: String,
    value: u64,
    min: u64,
    max: u64,
}

#[derive(Template)]
#[template(path = "staff_policies.html")]
struct PoliciesPage {
    t: Tr,
    title: String,
    switch_href: String,
    csrf: String,
    can_manage: bool,
    notice: Option<String>,
    error: Option<String>,
    rows: Vec<PolicyRow>,
}

fn policies_page(
    lang: Lang,
    member: &StaffMember,
    state: &AppState,
    notice: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    let t = Tr(lang);
    let policy = state.policy.get();
    let rows = policy
        .values()
        .iter()
        .zip(crate::authn::sign_in_policy::BOUNDS)
        .map(|((name, value), (_, min, max))| PolicyRow {
            name,
            label: t.get(&format!("policy-{}", name.replace('_', "-"))),
            value: *value,
            min,
            max,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    no_store(html(
        status,
        PoliciesPage {
            t,
            title: t.get("policy-title"),
            switch_href: switch(lang, "policies"),
            csrf: member.holder.csrf(state),
            can_manage: member.rights.admin,
            notice,
            error,
            rows,
        }
        .render(),
    ))
}

/// `GET /staff/policies`: the sign-in policy in force.
pub async fn policies(
    req: HttpRequest,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let member = match staff_member(&req, &state, can_read).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let notice = (query.done.as_deref() == Some("policy")).then(|| Tr(lang).get("policy-saved"));
    Ok(policies_page(lang, &member, &state, notice, None))
}

/// `POST /staff/policies`: new values, within their bounds.
pub async fn change_policies(
    req: HttpRequest,
    form: web::Form<std::collections::HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    let member = match form_sender(&req, &state, is_admin, &csrf).await? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let reason = match Reason::parse(form.get("reason").map_or("", String::as_str)) {
        Ok(r) => r,
        Err(r) => {
            let message = Tr(lang).get(r.message_id());
            return Ok(policies_page(lang, &member, &state, None, Some(message)));
        }
    };
    let typed: Vec<(String, String)> = crate::authn::sign_in_policy::BOUNDS
        .iter()
        .filter_map(|(name, _, _)| form.get(*name).map(|v| (name.to_string(), v.clone())))
        .collect();
    let (in_force, actor) = (state.policy.clone(), member.actor.clone());
    let outcome = state
        .store
        .run(move |conn| staff::change_policy(conn, &in_force, &actor, &typed, &reason))
        .await?;
    match outcome {
        Ok(_) => Ok(see_other("/staff/policies?done=policy").finish()),
        Err(refusal) => {
            let mut message = Tr(lang).get(refusal.message_id());
            if let Refusal::PolicyOutOfBounds(detail) = &refusal {
                message = format!("{message} ({detail})");
            }
            Ok(policies_page(lang, &member, &state, None, Some(message)))
        }
    }
}
