//! The helpdesk and administration console and its API: each repair in headless Chromium
//! (`tests/browser/staff.mjs`) with its audit row checked here; over HTTP, who may read, act
//! and manage clients, CSRF on the forms, and a contact email change that takes effect only
//! once the new address confirms it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use idp::store::audit::{self, AuditEvent};
use idp::store::roles::{self, Role};
use idp::store::users;
use serde_json::Value;
use support::free_port;
use support::journey::{
    authorize_and_sign_in, cookie_pair, csrf_of, file_portal_access_token, location, no_redirects,
};
use support::server::{person_with_emailed_codes, Deployment};

const PASSWORD: &str = "Correct-Horse-Battery-9";
const HELPDESK: &str = "soutien@example.org";
const ADMIN: &str = "admin@example.org";
const AUDITOR: &str = "verification@example.org";
const MEMBER: &str = "membre@example.org";
const TARGET_CODE: &str = "R12345";

const CONFIG: &str = r#"
[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "ZmlsZS1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ"
redirect_uris = ["http://127.0.0.1:9/callback"]
"#;

const PORTAL_AUTHORIZE: &str = "/authorize?client_id=file-portal&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&response_type=code&scope=openid&state=s&nonce=n";

struct Staff {
    d: Deployment,
    base: String,
    helpdesk: String,
    admin: String,
    member: String,
}

fn deployment() -> Staff {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Deployment::start(CONFIG, false, port, &[("GUICHET_PUBLIC_URL", &base)]);
    let helpdesk = person_with_emailed_codes(&d.store, HELPDESK, PASSWORD, None).id;
    let admin = person_with_emailed_codes(&d.store, ADMIN, PASSWORD, None).id;
    let auditor = person_with_emailed_codes(&d.store, AUDITOR, PASSWORD, None).id;
    let member = person_with_emailed_codes(&d.store, MEMBER, PASSWORD, Some(TARGET_CODE)).id;
    let mut conn = d.store.connection().expect("conn");
    for (id, role) in [
        (&helpdesk, Role::Helpdesk),
        (&admin, Role::Admin),
        (&auditor, Role::Auditor),
    ] {
        roles::grant(&mut conn, id, role, idp::store::now()).expect("grant");
    }
    drop(conn);
    Staff {
        d,
        base,
        helpdesk,
        admin,
        member,
    }
}

/// Signs in through the console's own client; returns the `Cookie` header of the console
/// (access token and SSO session) and the access token alone.
fn console_sign_in(s: &Staff, email: &str) -> (String, String) {
    let http = no_redirects();
    let r = http.get(format!("{}/staff", s.base)).send().expect("staff");
    assert_eq!(r.status(), 303);
    let pending = cookie_pair(&r, "guichet_account_login").expect("pending");
    let r = authorize_and_sign_in(
        &http,
        &s.base,
        &location(&r),
        s.d.dir.path(),
        email,
        PASSWORD,
    );
    let session = cookie_pair(&r, "guichet_session").expect("session");
    let r = http
        .get(location(&r))
        .header("Cookie", &pending)
        .send()
        .expect("callback");
    assert_eq!(location(&r), "/staff", "back to the console");
    let account = cookie_pair(&r, "guichet_account").expect("token");
    let token = account.trim_start_matches("guichet_account=").to_string();
    (format!("{account}; {session}"), token)
}

fn events(s: &Staff, event_type: &str) -> Vec<AuditEvent> {
    let mut conn = s.d.store.connection().expect("conn");
    let mut found = audit::search(
        &mut conn,
        &audit::AuditFilter {
            event_type: Some(event_type.into()),
            ..Default::default()
        },
        None,
        1000,
    )
    .expect("search");
    found.reverse();
    found
}

fn detail(e: &AuditEvent) -> Value {
    serde_json::from_str(&e.detail).expect("detail")
}

/// The one audit row of `event_type`, checked for actor, subject and reason.
fn assert_action(s: &Staff, event_type: &str, actor: &str, subject: Option<&str>, reason: &str) {
    let rows = events(s, event_type);
    let row = rows
        .iter()
        .find(|e| detail(e)["reason"].as_str() == Some(reason))
        .unwrap_or_else(|| panic!("no {event_type} row with the reason {reason:?}: {rows:?}"));
    assert_eq!(row.actor.as_deref(), Some(actor), "{event_type} actor");
    assert_eq!(row.subject.as_deref(), subject, "{event_type} subject");
    assert!(row.ip.is_some(), "{event_type} records the address");
}

#[test]
fn helpdesk_and_admin_console_in_chromium() {
    support::browser::require_browser();
    let s = deployment();
    // The member has a session open at a portal, and is then locked out.
    let r = authorize_and_sign_in(
        &no_redirects(),
        &s.base,
        PORTAL_AUTHORIZE,
        s.d.dir.path(),
        MEMBER,
        PASSWORD,
    );
    assert!(location(&r).starts_with("http://127.0.0.1:9/callback?code="));
    {
        let hasher = idp::crypto::KeyedHasher::new(&s.d.master_key);
        let key = idp::authn::lockout::account_key(&hasher, MEMBER);
        let mut conn = s.d.store.connection().expect("conn");
        let at = idp::store::now();
        idp::store::attempt_counters::count_attempt(
            &mut conn,
            &key,
            idp::store::attempt_counters::Counter::Password,
            at,
            at,
        )
        .expect("count");
        assert!(idp::store::attempt_counters::lock(
            &mut conn,
            &key,
            at + chrono::Duration::minutes(15),
            at
        )
        .expect("lock"));
    }
    let new_email = "marie.nouvelle@example.org";
    let outsider = "citoyen@example.org";
    person_with_emailed_codes(&s.d.store, outsider, PASSWORD, None);
    support::browser::run_script(
        "staff.mjs",
        "browser-staff",
        &[
            ("IDP_URL", s.base.clone()),
            (
                "OUTBOX_DIR",
                s.d.dir.path().join("data/outbox").display().to_string(),
            ),
            ("HELPDESK_EMAIL", HELPDESK.into()),
            ("ADMIN_EMAIL", ADMIN.into()),
            ("OUTSIDER_EMAIL", outsider.into()),
            ("MEMBER_EMAIL", MEMBER.into()),
            ("PASSWORD", PASSWORD.into()),
            ("TARGET_CODE", TARGET_CODE.into()),
            ("TARGET_NEW_EMAIL", new_email.into()),
        ],
        "staff console passed",
    );
    let (h, m) = (s.helpdesk.as_str(), Some(s.member.as_str()));
    assert_action(
        &s,
        "account.unlocked",
        h,
        m,
        "Appel du membre, identité vérifiée (unlock)",
    );
    assert_action(
        &s,
        "mfa.reset",
        h,
        m,
        "Téléphone perdu, identité vérifiée (reset-2fa)",
    );
    assert_action(
        &s,
        "invitation.sent",
        h,
        m,
        "Nouvelle invitation demandée (invite)",
    );
    assert_action(
        &s,
        "email.change_requested",
        h,
        m,
        "Nouvelle adresse au dossier (email)",
    );
    assert_action(&s, "sessions.ended", h, m, "Appareil volé (end-sessions)");
    let ended = events(&s, "sessions.ended");
    assert_eq!(
        detail(&ended[0])["count"],
        1,
        "the portal session was ended"
    );
    assert_action(
        &s,
        "account.disabled",
        h,
        m,
        "Départ à la retraite (disable)",
    );
    assert_action(&s, "account.enabled", h, m, "Retour au travail (enable)");
    assert_action(
        &s,
        "client.created",
        &s.admin,
        None,
        "New portal for the college (client)",
    );
    assert_action(
        &s,
        "client.updated",
        &s.admin,
        None,
        "Second callback (redirect-uris)",
    );
    assert_action(
        &s,
        "client.secret_rotated",
        &s.admin,
        None,
        "Secret leaked (secret)",
    );
    assert_action(
        &s,
        "client.disabled",
        &s.admin,
        None,
        "Portal retired (disable)",
    );
    let policy = events(&s, "policy.changed");
    assert_eq!(policy.len(), 1, "the refused change left no row");
    assert_eq!(detail(&policy[0])["reason"], "Longer first lock (policy)");
    assert_eq!(
        detail(&policy[0])["changes"]["lock_secs"],
        serde_json::json!({ "from": 900, "to": 1800 })
    );
    assert_eq!(
        events(&s, "signing_key.rotated")
            .iter()
            .filter(|e| detail(e)["reason"] == "Yearly rotation (keys)")
            .count(),
        3,
        "one new key per algorithm"
    );
    // What the actions did, in the database.
    let mut conn = s.d.store.connection().expect("conn");
    let member = users::find_by_id(&mut conn, &s.member)
        .expect("find")
        .expect("member");
    assert_eq!(member.mfa_method, users::MfaMethod::None);
    assert!(member.must_reset && !member.disabled);
    assert_eq!(member.email, MEMBER, "not confirmed yet");
    let client = idp::store::clients::find(&mut conn, "college-messaging")
        .expect("find")
        .expect("client registered");
    assert!(client.secret_hash.is_some() && !client.enabled);
    assert_eq!(client.redirect_uris.len(), 2);
    // The invitation and both email change messages went out.
    let outbox = mail_worker::Outbox::open(s.d.dir.path().join("data/outbox")).expect("outbox");
    let jobs = outbox.messages().expect("messages");
    let sent = |to: &str, template: mail_queue::Template| {
        jobs.iter()
            .any(|j| j.recipient == to && j.template == template)
    };
    assert!(sent(MEMBER, mail_queue::Template::Invitation));
    assert!(sent(MEMBER, mail_queue::Template::EmailChangeNotice));
    assert!(sent(new_email, mail_queue::Template::EmailChangeCode));
    let report = audit::verify(&mut conn, 1000).expect("verify");
    assert_eq!(report.first_break, None);
}

fn api(
    s: &Staff,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = no_redirects()
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().expect("api");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Starts a sign-in at the portal; the login transaction cookie.
fn portal_sign_in(s: &Staff) -> String {
    let r = no_redirects()
        .get(format!("{}{PORTAL_AUTHORIZE}", s.base))
        .send()
        .expect("authorize");
    cookie_pair(&r, "guichet_tx").expect("tx")
}

/// The sign-in page of the transaction `tx`.
fn login_page(s: &Staff, tx: &str) -> (u16, String) {
    page(s, tx, "/login")
}

/// Submits an email and a password on the sign-in page; 303 when they were accepted.
fn submit_password(s: &Staff, tx: &str, email: &str, password: &str) -> (u16, String) {
    let (_, html) = login_page(s, tx);
    let r = no_redirects()
        .post(format!("{}/login", s.base))
        .header("Cookie", tx)
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .expect("POST");
    (r.status().as_u16(), r.text().expect("page"))
}

fn page(s: &Staff, cookies: &str, path: &str) -> (u16, String) {
    let r = no_redirects()
        .get(format!("{}{path}", s.base))
        .header("Cookie", cookies)
        .send()
        .expect("GET");
    (r.status().as_u16(), r.text().expect("body"))
}

fn post(s: &Staff, cookies: &str, path: &str, fields: &[(&str, &str)]) -> u16 {
    no_redirects()
        .post(format!("{}{path}", s.base))
        .header("Cookie", cookies)
        .form(fields)
        .send()
        .expect("POST")
        .status()
        .as_u16()
}

#[test]
fn who_may_read_act_and_manage_clients() {
    let s = deployment();
    let person = format!("/staff/people/{}", s.member);
    let unlock = format!("{person}/unlock");
    let api_unlock = format!("/staff/api/people/{}/unlock", s.member);
    let reason = serde_json::json!({ "reason": "checked by phone" });
    let new_client = serde_json::json!({
        "id": "new-portal", "name": "New", "redirect_uris": ["https://new.example.org/cb"],
        "reason": "new portal",
    });

    // A member: no staff page, no API.
    let (member_cookies, member_token) = console_sign_in(&s, MEMBER);
    assert_eq!(page(&s, &member_cookies, "/staff").0, 403);
    assert_eq!(page(&s, &member_cookies, &person).0, 403);
    assert_eq!(page(&s, &member_cookies, "/staff/clients").0, 403);
    assert_eq!(post(&s, &member_cookies, &unlock, &[("reason", "x")]), 403);
    let (status, body) = api(
        &s,
        reqwest::Method::GET,
        "/staff/api/people?q=R12345",
        &member_token,
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    // An auditor reads, but cannot act.
    let (auditor_cookies, auditor_token) = console_sign_in(&s, AUDITOR);
    let (status, html) = page(&s, &auditor_cookies, "/staff?q=r12345");
    assert_eq!(status, 200);
    assert!(html.contains(MEMBER), "found by member code");
    let (status, html) = page(&s, &auditor_cookies, &person);
    assert_eq!(status, 200);
    assert!(
        !html.contains("form-unlock"),
        "no action forms for an auditor"
    );
    let (status, body) = api(
        &s,
        reqwest::Method::GET,
        "/staff/api/people?q=R12345",
        &auditor_token,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["people"][0]["email"], MEMBER);
    assert_eq!(body["people"][0]["second_factor"], "email");
    assert_eq!(
        api(
            &s,
            reqwest::Method::POST,
            &api_unlock,
            &auditor_token,
            Some(reason.clone())
        )
        .0,
        403
    );
    assert_eq!(
        post(
            &s,
            &auditor_cookies,
            &unlock,
            &[("csrf", "x"), ("reason", "x")]
        ),
        403
    );

    // The helpdesk acts on people, only with the form's CSRF token and a reason, but cannot
    // manage clients.
    let (helpdesk_cookies, helpdesk_token) = console_sign_in(&s, HELPDESK);
    let (_, html) = page(&s, &helpdesk_cookies, &person);
    let csrf = csrf_of(&html);
    assert!(html.contains("form-unlock") && html.contains("form-reset-2fa"));
    assert!(
        !html.contains("form-invite"),
        "no first-login invitation for a person who has activated"
    );
    assert_eq!(
        post(&s, &helpdesk_cookies, &unlock, &[("reason", "no token")]),
        400
    );
    assert_eq!(
        post(
            &s,
            &helpdesk_cookies,
            &unlock,
            &[("csrf", "forged"), ("reason", "forged")]
        ),
        400
    );
    assert_eq!(
        post(
            &s,
            &helpdesk_cookies,
            &unlock,
            &[("csrf", &csrf), ("reason", "  ")]
        ),
        422
    );
    assert!(
        events(&s, "account.unlocked").is_empty(),
        "nothing done without token and reason"
    );
    assert_eq!(
        post(
            &s,
            &helpdesk_cookies,
            &unlock,
            &[("csrf", &csrf), ("reason", "form unlock")]
        ),
        303
    );
    assert_action(
        &s,
        "account.unlocked",
        &s.helpdesk,
        Some(&s.member),
        "form unlock",
    );
    let (status, body) = api(
        &s,
        reqwest::Method::POST,
        &api_unlock,
        &helpdesk_token,
        Some(reason.clone()),
    );
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    assert_action(
        &s,
        "account.unlocked",
        &s.helpdesk,
        Some(&s.member),
        "checked by phone",
    );
    let (status, body) = api(
        &s,
        reqwest::Method::POST,
        &api_unlock,
        &helpdesk_token,
        Some(serde_json::json!({})),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_request"))
    );
    assert_eq!(
        page(&s, &helpdesk_cookies, "/staff/clients").0,
        200,
        "the helpdesk may look"
    );
    let (_, html) = page(&s, &helpdesk_cookies, "/staff/clients");
    assert!(!html.contains("form-new-client"));
    let client_form = [
        ("csrf", csrf.as_str()),
        ("id", "new-portal"),
        ("name", "New"),
        ("kind", "confidential"),
        ("redirect_uris", "https://new.example.org/cb"),
        ("reason", "new portal"),
    ];
    assert_eq!(
        post(&s, &helpdesk_cookies, "/staff/clients", &client_form),
        403
    );
    assert_eq!(
        post(
            &s,
            &helpdesk_cookies,
            "/staff/keys/rotate",
            &[("csrf", &csrf), ("reason", "x")]
        ),
        403
    );
    assert_eq!(
        api(
            &s,
            reqwest::Method::POST,
            "/staff/api/clients",
            &helpdesk_token,
            Some(new_client.clone())
        )
        .0,
        403
    );

    // An administrator's token from a portal (not the console, no staff scope) is refused.
    let http = no_redirects();
    let portal_token = file_portal_access_token(&http, &s.base, s.d.dir.path(), ADMIN, PASSWORD);
    let portal_token = portal_token.as_str();
    assert_eq!(
        api(
            &s,
            reqwest::Method::GET,
            "/staff/api/clients",
            portal_token,
            None
        )
        .0,
        403
    );

    // The administrator manages clients: created with a secret shown once, rotated, and the
    // configured ones left to the configuration file.
    let (_, admin_token) = console_sign_in(&s, ADMIN);
    let (status, body) = api(
        &s,
        reqwest::Method::POST,
        "/staff/api/clients",
        &admin_token,
        Some(new_client.clone()),
    );
    assert_eq!(status, 201, "{body}");
    let first = body["client_secret"].as_str().expect("secret").to_string();
    let (status, body) = api(
        &s,
        reqwest::Method::POST,
        "/staff/api/clients/new-portal/secret",
        &admin_token,
        Some(serde_json::json!({ "reason": "leaked" })),
    );
    assert_eq!(status, 200);
    assert_ne!(body["client_secret"].as_str().expect("secret"), first);
    assert_eq!(
        api(
            &s,
            reqwest::Method::POST,
            "/staff/api/clients",
            &admin_token,
            Some(new_client)
        )
        .0,
        422
    );
    let (status, body) = api(
        &s,
        reqwest::Method::POST,
        "/staff/api/clients/file-portal/secret",
        &admin_token,
        Some(serde_json::json!({ "reason": "x" })),
    );
    assert_eq!(status, 422);
    assert!(body["error_description"]
        .as_str()
        .expect("why")
        .contains("configuration file"));
    let (status, body) = api(
        &s,
        reqwest::Method::GET,
        "/staff/api/clients",
        &admin_token,
        None,
    );
    assert_eq!(status, 200);
    let listed = body["clients"].as_array().expect("clients");
    assert!(listed
        .iter()
        .any(|c| c["id"] == "new-portal" && c["from_configuration"] == false));
    assert!(listed.iter().all(|c| c.get("secret_hash").is_none()));
    assert_action(&s, "client.created", &s.admin, None, "new portal");
    assert_action(&s, "client.secret_rotated", &s.admin, None, "leaked");

    // The sign-in policy: only administrators change it, only within its bounds, and the
    // change holds at once.
    assert_eq!(
        post(
            &s,
            &helpdesk_cookies,
            "/staff/policies",
            &[("csrf", &csrf), ("max_failures", "3"), ("reason", "x")]
        ),
        403
    );
    let change = |changes: Value| {
        api(
            &s,
            reqwest::Method::POST,
            "/staff/api/policies",
            &admin_token,
            Some(serde_json::json!({ "changes": changes, "reason": "stricter after an incident" })),
        )
    };
    let (status, body) = change(serde_json::json!({ "max_failures": 2 }));
    assert_eq!(status, 422);
    assert!(body["error_description"]
        .as_str()
        .expect("why")
        .contains("max_failures must be a whole number from 3 to 10"));
    let (status, body) =
        change(serde_json::json!({ "max_failures": 3, "email_code_ttl_secs": 300 }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy"]["max_failures"], 3);
    let (status, body) = api(
        &s,
        reqwest::Method::GET,
        "/staff/api/policies",
        &helpdesk_token,
        None,
    );
    assert_eq!(
        (status, body["policy"]["email_code_ttl_secs"].as_u64()),
        (200, Some(300))
    );
    let changed = events(&s, "policy.changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(
        detail(&changed[0])["changes"]["max_failures"],
        serde_json::json!({ "from": 5, "to": 3 })
    );
    assert_eq!(changed[0].actor.as_deref(), Some(s.admin.as_str()));
    // Three wrong passwords now lock an account, and code pages state the new lifetime.
    let tx = portal_sign_in(&s);
    let login = |password: &str| submit_password(&s, &tx, AUDITOR, password);
    for _ in 0..3 {
        assert_ne!(login("Wrong-Password-123").0, 303);
    }
    let (status, page_html) = login(PASSWORD);
    assert_ne!(status, 303, "locked after three failures");
    assert!(
        page_html.contains("Trop de tentatives") || page_html.contains("Too many attempts"),
        "{page_html}"
    );
    let tx = portal_sign_in(&s);
    assert_eq!(submit_password(&s, &tx, HELPDESK, PASSWORD).0, 303);
    let (_, html) = login_page(&s, &tx);
    assert!(html.contains("valide pendant 5 minutes"), "{html}");
    // No secret in any audit row.
    for e in events(&s, "client.secret_rotated")
        .iter()
        .chain(&events(&s, "client.created"))
    {
        assert!(!e.detail.contains(&first));
    }
}

#[test]
fn a_new_contact_email_takes_effect_once_its_code_is_entered() {
    let s = deployment();
    let new_email = "membre.nouveau@example.org";
    let (_, helpdesk_token) = console_sign_in(&s, HELPDESK);
    let (status, body) = api(
        &s,
        reqwest::Method::POST,
        &format!("/staff/api/people/{}/email", s.member),
        &helpdesk_token,
        Some(serde_json::json!({ "email": new_email, "reason": "married name" })),
    );
    assert_eq!(status, 200, "{body}");
    // The old address is told; the new one gets the code.
    let outbox = mail_worker::Outbox::open(s.d.dir.path().join("data/outbox")).expect("outbox");
    let jobs = outbox.messages().expect("messages");
    assert!(jobs
        .iter()
        .any(|j| j.recipient == MEMBER && j.template == mail_queue::Template::EmailChangeNotice));
    let code_job = jobs
        .iter()
        .find(|j| j.recipient == new_email && j.template == mail_queue::Template::EmailChangeCode)
        .expect("code to the new address");
    let code = code_job.parameters["code"].clone();
    assert!(code_job.parameters["link"].ends_with("/email-change"));

    // Until then, sign-in uses the old address.
    let http = no_redirects();
    let tx = portal_sign_in(&s);
    let login = |email: &str| submit_password(&s, &tx, email, PASSWORD).0;
    assert_ne!(
        login(new_email),
        303,
        "the new address does not sign in yet"
    );
    let r = authorize_and_sign_in(
        &http,
        &s.base,
        PORTAL_AUTHORIZE,
        s.d.dir.path(),
        MEMBER,
        PASSWORD,
    );
    assert!(location(&r).starts_with("http://127.0.0.1:9/callback?code="));

    // The confirmation page: its form is bound to a cookie; a wrong code counts, the right one
    // changes the address.
    let r = http
        .get(format!("{}/email-change", s.base))
        .send()
        .expect("page");
    let binding = cookie_pair(&r, "guichet_email_change").expect("binding cookie");
    let csrf = csrf_of(&r.text().expect("html"));
    let confirm = |code: &str, csrf: &str, cookie: &str| {
        let r = http
            .post(format!("{}/email-change", s.base))
            .header("Cookie", cookie)
            .form(&[("csrf", csrf), ("email", new_email), ("code", code)])
            .send()
            .expect("POST");
        (r.status().as_u16(), r.text().expect("html"))
    };
    let (status, html) = confirm(&code, "forged", &binding);
    assert_eq!(status, 422);
    assert!(html.contains("formulaire a expiré") || html.contains("form has expired"));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, html) = confirm(wrong, &csrf, &binding);
    assert_eq!(status, 422);
    assert!(html.contains("email-change-error"));
    assert_eq!(
        users::find_by_id(&mut s.d.store.connection().expect("conn"), &s.member)
            .expect("find")
            .expect("member")
            .email,
        MEMBER
    );
    let (status, html) = confirm(&code, &csrf, &binding);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("email-changed"));
    let member = users::find_by_id(&mut s.d.store.connection().expect("conn"), &s.member)
        .expect("find")
        .expect("member");
    assert_eq!(member.email, new_email);
    assert!(member.email_verified);
    // A used code does not work twice.
    assert_eq!(confirm(&code, &csrf, &binding).0, 422);

    // Now the new address signs in and the old one does not.
    let tx2 = portal_sign_in(&s);
    let (status, _) = submit_password(&s, &tx2, MEMBER, PASSWORD);
    assert_ne!(status, 303, "the old address no longer signs in");
    let r = authorize_and_sign_in(
        &http,
        &s.base,
        PORTAL_AUTHORIZE,
        s.d.dir.path(),
        new_email,
        PASSWORD,
    );
    assert!(location(&r).starts_with("http://127.0.0.1:9/callback?code="));
    assert_action(
        &s,
        "email.change_requested",
        &s.helpdesk,
        Some(&s.member),
        "married name",
    );
    let changed = events(&s, "email.changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(detail(&changed[0])["new"], new_email);
    assert_eq!(detail(&changed[0])["old"], MEMBER);
}

#[test]
fn a_name_many_share_lists_the_first_fifty_and_says_there_are_more() {
    let s = deployment();
    let mut conn = s.d.store.connection().expect("conn");
    // 52 Tremblays: Élise first in alphabetical order, accents aside; byte order would put
    // her after every "Personne".
    let mut given: Vec<String> = (0..51).map(|i| format!("Personne {i:02}")).collect();
    given.push("Élise".into());
    for (i, name) in given.iter().enumerate() {
        let person = users::NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: format!("tremblay{i}@example.org"),
            member_code: None,
            given_name: name.clone(),
            family_name: "Tremblay".into(),
            locale: "fr-CA".into(),
            password_hash: None,
            must_reset: true,
        };
        users::insert(&mut conn, &person, idp::store::now()).expect("insert");
    }
    drop(conn);

    let (cookies, token) = console_sign_in(&s, HELPDESK);
    let (status, html) = page(&s, &cookies, "/staff?q=tremblay");
    assert_eq!(status, 200);
    let listed: Vec<&str> = html
        .split("<tr><td><a href=\"/staff/people/")
        .skip(1)
        .map(|row| {
            row.split("</a>")
                .next()
                .expect("name")
                .split('>')
                .nth(1)
                .expect("name")
        })
        .collect();
    assert_eq!(listed.len(), 50, "{html}");
    assert_eq!(listed[0], "Élise Tremblay");
    assert_eq!(listed[1], "Personne 00 Tremblay");
    assert_eq!(listed[49], "Personne 48 Tremblay");
    let more = html
        .split("id=\"more\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the page says more match");
    assert!(more.contains("50") && more.contains("alphab"), "{more}");
    let (_, html) = page(&s, &cookies, "/staff?q=tremblay+elise");
    assert!(!html.contains("id=\"more\""), "one found, no more");

    let (status, body) = api(
        &s,
        reqwest::Method::GET,
        "/staff/api/people?q=tremblay",
        &token,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["people"].as_array().expect("people").len(), 50);
    assert_eq!(body["people"][0]["email"], "tremblay51@example.org");
    assert_eq!(body["more"], true);
    let (_, body) = api(
        &s,
        reqwest::Method::GET,
        "/staff/api/people?q=personne+50",
        &token,
        None,
    );
    assert_eq!(body["people"].as_array().expect("people").len(), 1);
    assert_eq!(body["more"], false);
}
