//! The auditor console: in headless Chromium (`tests/browser/audit.mjs`), a member without the
//! role is refused and an auditor filters by person and portal and exports exactly that as
//! CSV; over HTTP, the JSON API answers only to an auditor's token and JSON Lines exports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use idp::store::audit::{self, NewAuditEvent};
use idp::store::roles::{self, Role};
use support::free_port;
use support::journey::{authorize_and_sign_in, cookie_pair, location, no_redirects};
use support::server::{person_with_emailed_codes, Deployment};

const PASSWORD: &str = "Correct-Horse-Battery-9";
const AUDITOR: &str = "verification@example.org";
const MEMBER: &str = "membre@example.org";

/// The member's number at their order, which the console also takes to name them.
const MEMBER_CODE: &str = "R77001";

fn person(d: &Deployment, email: &str, member_code: Option<&str>) -> String {
    person_with_emailed_codes(&d.store, email, PASSWORD, member_code).id
}

fn seed(d: &Deployment, subject: &str, client: &str, n: usize) {
    let mut conn = d.store.connection().expect("conn");
    for i in 0..n {
        audit::append(
            &mut conn,
            &NewAuditEvent {
                id: uuid::Uuid::new_v4().to_string(),
                occurred_at: idp::store::now(),
                event_type: "token.issued".into(),
                actor: Some(client.into()),
                subject: Some(subject.into()),
                client_id: Some(client.into()),
                ip: Some("192.0.2.10".into()),
                user_agent: Some("seed".into()),
                request_id: None,
                detail: format!(r#"{{"jti":"seed-{i}"}}"#),
            },
        )
        .expect("seed");
    }
}

const CONFIG: &str = r#"
[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "ZmlsZS1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ"
redirect_uris = ["http://127.0.0.1:9/callback"]

[[clients]]
id = "atip-portal"
name = "AIPRP en ligne"
first_party = true
secret = "YXRpcC1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ"
redirect_uris = ["http://127.0.0.1:9/callback"]
"#;

fn deployment() -> (Deployment, String, String, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Deployment::start(CONFIG, false, port, &[("GUICHET_PUBLIC_URL", &base)]);
    let auditor = person(&d, AUDITOR, None);
    let member = person(&d, MEMBER, Some(MEMBER_CODE));
    roles::grant(
        &mut d.store.connection().expect("conn"),
        &auditor,
        Role::Auditor,
        idp::store::now(),
    )
    .expect("grant");
    seed(&d, &member, "file-portal", 3);
    seed(&d, &member, "atip-portal", 2);
    seed(&d, &auditor, "file-portal", 4);
    (d, base, auditor, member)
}

#[test]
fn auditor_console_in_chromium() {
    support::browser::require_browser();
    let (d, base, _, member) = deployment();
    support::browser::run_script(
        "audit.mjs",
        "browser-audit",
        &[
            ("IDP_URL", base.clone()),
            (
                "OUTBOX_DIR",
                d.dir.path().join("data/outbox").display().to_string(),
            ),
            ("AUDITOR_EMAIL", AUDITOR.into()),
            ("MEMBER_EMAIL", MEMBER.into()),
            ("PASSWORD", PASSWORD.into()),
            ("MEMBER_ID", member.clone()),
            ("MEMBER_CODE", MEMBER_CODE.into()),
            ("MEMBER_PORTAL_EVENTS", "3".into()),
        ],
        "audit console passed",
    );
    // The chain still holds after everything the journey wrote.
    let report = audit::verify(&mut d.store.connection().expect("conn"), 1000).expect("verify");
    assert_eq!(report.first_break, None);
}

/// Signs in through the console's own client; returns the access token and the session
/// cookie.
fn console_sign_in(d: &Deployment, base: &str, email: &str) -> (String, String) {
    let http = no_redirects();
    let r = http.get(format!("{base}/audit")).send().expect("audit");
    assert_eq!(r.status(), 303);
    let pending = cookie_pair(&r, "guichet_account_login").expect("pending");
    let r = authorize_and_sign_in(&http, base, &location(&r), d.dir.path(), email, PASSWORD);
    let session = cookie_pair(&r, "guichet_session").expect("session");
    let r = http
        .get(location(&r))
        .header("Cookie", &pending)
        .send()
        .expect("callback");
    assert_eq!(location(&r), "/audit", "back to the console");
    let token = cookie_pair(&r, "guichet_account")
        .expect("token")
        .trim_start_matches("guichet_account=")
        .to_string();
    (token, session)
}

#[test]
fn audit_api_answers_auditors_only() {
    let (d, base, _, member) = deployment();
    let http = no_redirects();
    let (auditor_token, auditor_session) = console_sign_in(&d, &base, AUDITOR);
    let (member_token, _) = console_sign_in(&d, &base, MEMBER);
    let api = |token: Option<&str>, query: &str| {
        let mut r = http.get(format!("{base}/audit/api/events?{query}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().expect("api");
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().expect("json"))
    };
    let (status, body) = api(None, "");
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, body) = api(Some(&member_token), "");
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    // The auditor's token from a portal is refused: a portal cannot read the log with it.
    let portal_token =
        support::journey::file_portal_access_token(&http, &base, d.dir.path(), AUDITOR, PASSWORD);
    let (status, body) = api(Some(&portal_token), "");
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, body) = api(
        Some(&auditor_token),
        &format!("subject={MEMBER}&client=atip-portal"),
    );
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    for e in events {
        assert_eq!(e["subject"], member.as_str());
        assert_eq!(e["client_id"], "atip-portal");
        assert_eq!(e["row_hash"].as_str().map(str::len), Some(64));
    }
    // The member code names the same person; the address and type narrow further.
    let (status, body) = api(
        Some(&auditor_token),
        &format!("subject={MEMBER_CODE}&client=atip-portal&ip=192.0.2.10&event_type=token.issued"),
    );
    assert_eq!(status, 200, "{body}");
    let by_code = body["events"].as_array().expect("events");
    assert_eq!(
        by_code, events,
        "the member code finds the same events as the email"
    );
    for (query, expected) in [
        (format!("subject={MEMBER}&ip=192.0.2.99"), 0),
        (format!("subject={MEMBER}&event_type=signin.failed"), 0),
        ("client=file-portal&ip=192.0.2.10".to_string(), 7),
        ("until=2000-01-01".to_string(), 0),
    ] {
        let (status, body) = api(Some(&auditor_token), &query);
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(
            body["events"].as_array().map(Vec::len),
            Some(expected),
            "{query}: {body}"
        );
    }
    let (status, body) = api(Some(&auditor_token), "from=tomorrow");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = api(Some(&auditor_token), "subject=nobody@example.org");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // JSON Lines export through the console's cookies: one line per event.
    let export = |cookies: String| {
        http.get(format!(
            "{base}/audit/export.jsonl?subject={MEMBER}&client=file-portal"
        ))
        .header("Cookie", cookies)
        .send()
        .expect("export")
    };
    let r = export(format!(
        "guichet_account={auditor_token}; {auditor_session}"
    ));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().expect("body");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines
        .iter()
        .all(|l| l["subject"] == member.as_str() && l["client_id"] == "file-portal"));
    // The token alone (no SSO session in the browser) is sent to sign in again.
    let r = export(format!("guichet_account={auditor_token}"));
    assert_eq!(r.status(), 303);
}

/// An export larger than one page streams every matching row, newest first, each page
/// following the last; the export is recorded with the newest row it could hold.
#[test]
fn an_export_streams_every_matching_row_newest_first() {
    let (d, base, _, member) = deployment();
    // Three pages and a half of the member's events at the file portal, beside the others.
    seed(&d, &member, "file-portal", 3_500);
    let newest = audit::last_seq(&mut d.store.connection().expect("conn"))
        .expect("q")
        .expect("rows");
    let (token, session) = console_sign_in(&d, &base, AUDITOR);
    let http = no_redirects();
    let r = http
        .get(format!(
            "{base}/audit/export.csv?subject={MEMBER}&client=file-portal"
        ))
        .header("Cookie", format!("guichet_account={token}; {session}"))
        .send()
        .expect("export");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let text = r.text().expect("body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().expect("header").get(0),
        Some("seq"),
        "one header line"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 3_503, "every matching row, across pages");
    let seqs: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("seq")).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first, no row twice"
    );
    assert!(rows
        .iter()
        .all(|r| &r[6] == member.as_str() && &r[7] == "file-portal"));
    // The JSON API pages the same rows: each page names where the next one starts.
    let mut paged = Vec::new();
    let mut query = format!("subject={MEMBER}&client=file-portal");
    loop {
        let body: serde_json::Value = http
            .get(format!("{base}/audit/api/events?{query}"))
            .bearer_auth(&token)
            .send()
            .expect("api")
            .json()
            .expect("json");
        let page = body["events"].as_array().expect("events");
        assert!(page.len() <= 50, "a page holds at most 50 events");
        paged.extend(page.iter().map(|e| e["seq"].as_i64().expect("seq")));
        match body["next_before"].as_i64() {
            Some(before) => {
                assert_eq!(page.len(), 50, "only a full page has a next one");
                query = format!("subject={MEMBER}&client=file-portal&before={before}");
            }
            None => break,
        }
    }
    assert_eq!(
        paged, seqs,
        "the pages hold the export's rows, in its order"
    );
    // The console pages the same way, and links back to the newest events from any page but
    // the first.
    let console = |query: &str| {
        http.get(format!("{base}/audit?{query}"))
            .header("Cookie", format!("guichet_account={token}; {session}"))
            .send()
            .expect("console")
            .text()
            .expect("html")
    };
    let filter = format!(
        "from=&until=&subject={}&client=file-portal&event_type=&ip=",
        MEMBER.replace('@', "%40")
    );
    // A link to `query` as the page writes it (HTML-escaped).
    let link = |id: &str, query: &str| {
        format!(
            "id=\"{id}\" href=\"/audit?{}\"",
            query.replace('&', "&amp;")
        )
    };
    let second_page = format!("{filter}&before={}", seqs[49]);
    let first = console(&filter);
    assert!(first.contains(&link("older", &second_page)), "{first}");
    assert!(
        !first.contains("id=\"newest\""),
        "the first page is the newest"
    );
    let second = console(&second_page);
    assert!(
        second.contains(&format!("<td>{}</td>", seqs[50])),
        "{second}"
    );
    assert!(
        !second.contains(&format!("<td>{}</td>", seqs[49])),
        "no row twice"
    );
    assert!(second.contains(&link("newest", &filter)), "{second}");
    assert!(
        second.contains(&link("older", &format!("{filter}&before={}", seqs[99]))),
        "{second}"
    );

    let events = audit::recent(&mut d.store.connection().expect("conn"), 20).expect("audit");
    let exported = events
        .iter()
        .find(|e| e.event_type == "audit.exported")
        .expect("the export is recorded");
    let detail: serde_json::Value = serde_json::from_str(&exported.detail).expect("json");
    assert_eq!(detail["format"], "csv");
    assert_eq!(detail["rows"], 3_503, "{detail}");
    assert!(
        detail["through_seq"].as_i64().expect("through_seq") >= newest,
        "{detail}"
    );
}
