//! The real `idp` binary: serving on SQLite and on a fresh PostgreSQL database, readiness with
//! Redis, configuration errors that name the key, migrations, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::time::{Duration, Instant};

use support::server::{client, run, Server};
use support::{free_port, require_redis, EmptyPostgres};

fn ready_json(server: &Server) -> (u16, serde_json::Value) {
    let response = client()
        .get(server.url("/health/ready"))
        .send()
        .expect("GET /health/ready");
    let status = response.status().as_u16();
    (status, response.json().expect("JSON body"))
}

#[test]
fn serves_on_sqlite_by_default_with_security_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let (status, body) = ready_json(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["redis"], "not_configured");
    assert!(
        dir.path().join("data/guichet.db").is_file(),
        "SQLite file under ./data"
    );
    assert!(
        dir.path().join("data/master.key").is_file(),
        "master key generated"
    );

    let response = client()
        .get(server.url("/health/live"))
        .header("X-Request-Id", "probe-12345678")
        .send()
        .expect("GET");
    let h = response.headers();
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-request-id"], "probe-12345678");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );

    // Unknown paths and oversized or odd requests never produce a 500.
    let missing = client().get(server.url("/nope")).send().expect("GET");
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("content-security-policy"));
    let generated = client()
        .get(server.url("/health/live"))
        .header("X-Request-Id", "bad id\twith tab")
        .send()
        .expect("GET");
    let id = generated.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "unsafe incoming ids are replaced: {id}"
    );

    // Requests the HTTP library cannot parse get a 4xx, and write no error line: the client
    // caused them, and anyone could send them.
    let port = server.base.rsplit(':').next().expect("port").to_string();
    for head in [
        format!(
            "GET /login HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(40_000)
        ),
        "GET /login HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_string(),
    ] {
        let status = raw_status_line(&port, head.as_bytes());
        assert!(status.starts_with("HTTP/1.1 4"), "{status}");
    }

    let (exit, logs) = server.terminate();
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}\n{logs}");
    assert!(!logs.contains("ERROR"), "no error line:\n{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal:\n{logs}"
    );

    assert!(
        logs.contains("generated a new one"),
        "start-up says the key was generated:\n{logs}"
    );
    assert!(logs.contains("SIGTERM"), "{logs}");
}

#[test]
fn requests_no_handler_takes_get_a_clear_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let alert = |body: &str| {
        let start = body.find("<p role=\"alert\">").expect("alert") + 16;
        body[start..start + body[start..].find('<').expect("end")].to_string()
    };

    // Pages: the person's language, what went wrong, what to do next; the status says why.
    const UNREADABLE_EN: &str =
        "This request could not be read: the address or the form it sent is not valid.";
    const UNREADABLE_FR: &str =
        "Cette demande n’a pas pu être lue : l’adresse ou le formulaire envoyé n’est pas valide.";
    let oversized = format!("email=a&password={}", "a".repeat(300_000));
    let pages = [
        (
            "a query that does not parse",
            "/audit?before=abc",
            None,
            400,
            UNREADABLE_EN,
            UNREADABLE_FR,
        ),
        (
            "a form sent as JSON",
            "/login",
            Some(("application/json", r#"{"email":"a@example.org"}"#)),
            415,
            UNREADABLE_EN,
            UNREADABLE_FR,
        ),
        (
            "a form over the limit",
            "/login",
            Some(("application/x-www-form-urlencoded", oversized.as_str())),
            413,
            "The form sent more than this service accepts.",
            "Le formulaire envoie plus que ce que ce service accepte.",
        ),
        (
            "an address with no page",
            "/nope",
            None,
            404,
            "There is no page at this address.",
            "Aucune page ne se trouve à cette adresse.",
        ),
    ];
    for (case, path, posted, status, en, fr) in pages {
        for (lang, expected) in [("en", en), ("fr-CA", fr)] {
            let request = match posted {
                None => http.get(server.url(path)),
                Some((content_type, body)) => http
                    .post(server.url(path))
                    .header("Content-Type", content_type)
                    .body(body.to_string()),
            };
            let r = request
                .header("Accept-Language", lang)
                .send()
                .expect("send");
            assert_eq!(r.status().as_u16(), status, "{case}, {lang}");
            assert_eq!(
                r.headers()["content-type"],
                "text/html; charset=utf-8",
                "{case}, {lang}"
            );
            assert!(r.headers().contains_key("content-security-policy"));
            let body = r.text().expect("body");
            assert!(
                body.contains(&format!("<html lang=\"{lang}\"")),
                "{case}: {body}"
            );
            assert_eq!(alert(&body), expected, "{case}, {lang}");
            // The console has a page to switch back to; the others say it in both languages.
            let (other_lang, other_text) = if lang == "en" {
                ("fr-CA", fr)
            } else {
                ("en", en)
            };
            let bilingual = body.contains(&format!(
                "<section class=\"other-language\" lang=\"{other_lang}\""
            )) && body.contains(other_text);
            assert_eq!(bilingual, !path.starts_with("/audit"), "{case}, {lang}");
            assert_eq!(body.contains("/login/lang"), !bilingual, "{case}, {lang}");
        }
    }

    // The language switch leads back to the console asked for, not to a sign-in page.
    let body = page_in(&server, "/audit?before=abc", "en");
    assert!(
        body.contains("href=\"/login/lang?to=fr-CA&amp;next=audit\""),
        "{body}"
    );

    // The JSON APIs: an error object, never a text/plain parser message. A value sent is not
    // echoed (serde would quote it), in the answer or in the log.
    let apis: Vec<(&str, reqwest::blocking::RequestBuilder, u16, &str)> = vec![
        (
            "a query that does not parse",
            http.get(server.url("/audit/api/events?before=x")),
            400,
            "invalid_request",
        ),
        (
            "a field of the wrong type",
            http.post(server.url("/staff/api/clients"))
                .header("Content-Type", "application/json")
                .body(r#"{"id": 987654321987}"#),
            400,
            "invalid_request",
        ),
        (
            "JSON that does not parse",
            http.post(server.url("/staff/api/policies"))
                .header("Content-Type", "application/json")
                .body("{bad"),
            400,
            "invalid_request",
        ),
        (
            "a body that is not JSON",
            http.post(server.url("/staff/api/clients"))
                .header("Content-Type", "text/plain")
                .body("id=x"),
            415,
            "invalid_request",
        ),
        (
            "an endpoint that does not exist",
            http.get(server.url("/staff/api/nope")),
            404,
            "not_found",
        ),
    ];
    for (case, request, status, error) in apis {
        let r = request.send().expect("send");
        assert_eq!(r.status().as_u16(), status, "{case}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{case}");
        let body = r.text().expect("body");
        let json: serde_json::Value = serde_json::from_str(&body).expect(case);
        assert_eq!(json["error"], error, "{case}: {body}");
        assert!(
            json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{case}: {body}"
        );
        assert!(!body.contains("987654321987"), "{case}: {body}");
    }

    // A method a path does not take: 405 naming those it does, HEAD wherever GET; its body is
    // a page (`false`) or, where clients call, an error object (`true`). A HEAD has no body.
    use reqwest::Method;
    for (method, path, allow, json) in [
        (Method::DELETE, "/login", "GET, HEAD, POST", false),
        (Method::GET, "/login/resend", "POST", false),
        (Method::PUT, "/staff/api/clients", "GET, HEAD, POST", true),
        (Method::POST, "/audit/api/events", "GET, HEAD", true),
        (Method::POST, "/jwks", "GET, HEAD", true),
        (Method::GET, "/token", "POST", true),
        (Method::GET, "/revoke", "POST", true),
        (Method::PUT, "/introspect", "POST", true),
        (Method::DELETE, "/userinfo", "GET, HEAD, POST", true),
        (
            Method::POST,
            "/.well-known/openid-configuration",
            "GET, HEAD",
            true,
        ),
        // GETs that act (an export is recorded, a callback redeems its code, an authorization
        // request may issue one, a session may end): GET only.
        (Method::HEAD, "/audit/export.csv", "GET", false),
        (Method::HEAD, "/account/callback", "GET", false),
        (Method::HEAD, "/authorize", "GET", false),
        (Method::HEAD, "/end_session", "GET, POST", false),
    ] {
        let case = format!("{method} {path}");
        let r = http
            .request(method.clone(), server.url(path))
            .header("Accept-Language", "fr-CA")
            .send()
            .expect("send");
        assert_eq!(r.status(), 405, "{case}");
        assert_eq!(r.headers()["allow"], allow, "{case}");
        let content_type = r.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        let body = r.text().expect("body");
        if json {
            assert_eq!(content_type, "application/json", "{case}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("an error object");
            assert_eq!(json["error"], "invalid_request", "{case}");
            assert!(json["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("Allow")));
        } else {
            assert_eq!(content_type, "text/html; charset=utf-8", "{case}");
            if method != Method::HEAD {
                assert_eq!(
                    alert(&body),
                    "Cette adresse n’accepte pas ce type de demande."
                );
                // No page to switch back to: the other language is on the page itself.
                assert!(!body.contains("/login/lang"), "{case}: {body}");
                assert!(
                    body.contains("<section class=\"other-language\" lang=\"en\"")
                        && body.contains("This address does not take this kind of request."),
                    "{case}: {body}"
                );
            }
        }
    }
    let r = http
        .delete(server.url("/login"))
        .header("Accept-Language", "en")
        .send()
        .expect("DELETE");
    let body = r.text().expect("body");
    assert!(body.contains("<html lang=\"en\""), "{body}");
    assert_eq!(
        alert(&body),
        "This address does not take this kind of request."
    );
    let get = http.get(server.url("/jwks")).send().expect("GET");
    let head = http.head(server.url("/jwks")).send().expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/json");
    assert_eq!(
        head.headers()["content-length"],
        get.headers()["content-length"]
    );
    assert!(head.bytes().expect("body").is_empty(), "HEAD has no body");

    let (exit, logs) = server.terminate();
    assert!(exit.success(), "{logs}");
    assert!(!logs.contains("ERROR"), "no error line:\n{logs}");
    assert!(!logs.contains("987654321987"), "{logs}");
    assert!(logs.contains("request could not be read"), "{logs}");
}

/// Junk of every kind a browser or a client can send (query strings, forms and JSON bodies
/// with odd values, wrong content types, forged cookies and credentials, odd languages),
/// thrown at every route with every method: never a 5xx, and every refusal has a body that
/// says why, as a page or as a JSON error object. The same seed gives the same requests.
#[test]
fn junk_sent_to_every_route_gets_a_clear_answer() {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    const PATHS: [&str; 45] = [
        "/authorize",
        "/login",
        "/login/lang",
        "/login/second-factor",
        "/login/resend",
        "/login/restart",
        "/login/reset",
        "/login/reset/code",
        "/login/password",
        "/login/enrol",
        "/login/enrol/app",
        "/login/enrol/email",
        "/account",
        "/account/callback",
        "/account/sessions/end",
        "/account/api/sign-ins",
        "/audit",
        "/audit/export.csv",
        "/audit/export.jsonl",
        "/audit/api/events",
        "/staff",
        "/staff/people/x",
        "/staff/people/x/unlock",
        "/staff/clients",
        "/staff/clients/x/disable",
        "/staff/keys/rotate",
        "/staff/policies",
        "/staff/api/policies",
        "/staff/api/people",
        "/staff/api/people/x",
        "/staff/api/people/x/unlock",
        "/staff/api/clients",
        "/staff/api/clients/x/secret",
        "/email-change",
        "/consent",
        "/end_session",
        "/end_session/confirm",
        "/revoke",
        "/introspect",
        "/userinfo",
        "/token",
        "/jwks",
        "/.well-known/openid-configuration",
        "/dev/outbox",
        "/health/ready",
    ];
    const KEYS: [&str; 28] = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "max_age",
        "ui_locales",
        "login_hint",
        "response_mode",
        "to",
        "next",
        "q",
        "before",
        "from",
        "subject",
        "code",
        "id_token_hint",
        "grant_type",
        "token",
        "csrf",
        "email",
        "password",
        "reason",
        "sid",
    ];
    const VALUES: [&str; 14] = [
        "",
        "a",
        "%00",
        "%ff%fe",
        "%C3%A9",
        "%27%22%3C%3E",
        "-1",
        "99999999999999999999",
        "%5B%5D",
        "null",
        "%25",
        "%zz",
        "%E2%80%AE",
        "..%2F..%2Fetc%2Fpasswd",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("GUICHET_DEV_MODE", "true")]);
    let http = client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pairs = |rng: &mut rand::rngs::StdRng| {
        (0..rng.gen_range(0..5))
            .map(|_| {
                let key = KEYS.choose(rng).expect("key");
                let value = VALUES.choose(rng).expect("value");
                format!("{key}={value}")
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let long = "A".repeat(5000);
    let mut sent = 0;
    for path in PATHS {
        for _ in 0..24 {
            let query = pairs(&mut rng);
            let method = [
                reqwest::Method::GET,
                reqwest::Method::POST,
                reqwest::Method::POST,
                reqwest::Method::PUT,
            ]
            .choose(&mut rng)
            .expect("method")
            .clone();
            let url = if query.is_empty() {
                server.url(path)
            } else {
                server.url(&format!("{path}?{query}"))
            };
            let mut request = http.request(method.clone(), url);
            if method != reqwest::Method::GET {
                let (content_type, body) = match rng.gen_range(0..5) {
                    0 => (
                        "application/json",
                        r#"{"reason": 5, "email": []}"#.to_string(),
                    ),
                    1 => ("application/json", "{bad".to_string()),
                    2 => ("text/plain", pairs(&mut rng)),
                    3 => ("application/x-www-form-urlencoded", long.clone()),
                    _ => ("application/x-www-form-urlencoded", pairs(&mut rng)),
                };
                request = request.header("Content-Type", content_type).body(body);
            }
            request = match rng.gen_range(0..6) {
                0 => request.header("Cookie", "__Host-guichet_tx=%ff; __Host-guichet_lang=xx"),
                1 => request.header("Authorization", "Bearer %27%22"),
                2 => request.header("Authorization", "Basic Og=="),
                3 => request.header("Accept-Language", "xx-YY;q=abc, *"),
                4 => request.header("Cookie", format!("__Host-guichet_sso={long}")),
                _ => request,
            };
            let r = request.send().expect("an answer");
            sent += 1;
            let status = r.status();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = r.bytes().expect("body");
            let case = format!("{method} {path}?{query}");
            assert!(status.as_u16() < 500, "{case}: {status}");
            if status.is_client_error() {
                assert!(!body.is_empty(), "{case}: {status} without a body");
                assert!(
                    content_type.starts_with("text/html") || content_type == "application/json",
                    "{case}: {status} as {content_type:?}"
                );
            }
        }
    }
    assert_eq!(sent, PATHS.len() * 24);
    let (exit, logs) = server.terminate();
    assert!(exit.success(), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains(" ERROR "), "no error line:\n{logs}");
}

/// The page at `path`, asked for in `lang`.
fn page_in(server: &Server, path: &str, lang: &str) -> String {
    client()
        .get(server.url(path))
        .header("Accept-Language", lang)
        .send()
        .expect("GET")
        .text()
        .expect("body")
}

/// The status line answered to `request`, sent as raw bytes to the server on `port`.
fn raw_status_line(port: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Writes `dir/idp.toml`: `settings`, then the client_credentials client `batch` (ES256)
/// with `secret`.
fn write_batch_config(dir: &std::path::Path, secret: &str, settings: &str) {
    std::fs::write(
        dir.join("idp.toml"),
        format!(
            "{settings}[[clients]]\nid = \"batch\"\nname = \"Batch\"\nsecret = \"{secret}\"\n\
             grants = [\"client_credentials\"]\nscopes = [\"members.read\"]\n\
             id_token_alg = \"ES256\"\n"
        ),
    )
    .expect("config");
}

/// An access token of the client_credentials client `batch`.
fn batch_token(server: &Server, secret: &str) -> String {
    let body: serde_json::Value = client()
        .post(server.url("/token"))
        .basic_auth("batch", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .expect("POST /token")
        .json()
        .expect("json");
    body["access_token"].as_str().expect("token").to_string()
}

/// After tokens (each with its audit row, written by the audit writer on its own connection),
/// SIGTERM closes every connection before the process exits: the last one folds the
/// write-ahead log back into the database, which is one file again, holding every row.
#[test]
fn a_stopped_server_leaves_one_database_file_with_every_audit_row() {
    const SECRET: &str = "c2h1dGRvd24tdGVzdC1zZWNyZXQtdGhhdC1pcy1sb25n";
    let dir = tempfile::tempdir().expect("tempdir");
    // Warnings only: the test reads the server's output after it exits, and a line per
    // request would fill the pipe first.
    write_batch_config(dir.path(), SECRET, "log_level = \"warn\"\n");
    let server = Server::start(dir.path(), &[("GUICHET_CONFIG", "idp.toml")]);
    // Tokens are still being asked for when the stop comes.
    let url = server.url("/token");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let askers: Vec<_> = (0..8)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut issued = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let answer = client()
                        .post(&url)
                        .basic_auth("batch", Some(SECRET))
                        .form(&[("grant_type", "client_credentials")])
                        .send();
                    match answer {
                        Ok(r) if r.status() == 200 => issued += 1,
                        // Refused or cut off by the stop: not issued.
                        _ => {}
                    }
                }
                issued
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let db = dir.path().join("data/guichet.db");
    assert!(
        dir.path().join("data/guichet.db-wal").exists(),
        "a running server writes through the WAL"
    );
    let (exit, logs) = server.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: usize = askers.into_iter().map(|a| a.join().expect("asker")).sum();
    assert!(answered > 20, "{answered} tokens before the stop");
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}\n{logs}");
    assert!(
        !dir.path().join("data/guichet.db-wal").exists(),
        "the WAL is left beside the database after a graceful stop\n{logs}"
    );
    let store = support::open_store(idp::store::DatabaseTarget::Sqlite(db));
    let mut conn = store.connection().expect("conn");
    let issued = idp::store::audit::recent(&mut conn, 1_000_000)
        .expect("audit")
        .iter()
        .filter(|e| e.event_type == "token.issued")
        .count();
    assert!(
        issued >= answered,
        "{issued} rows for {answered} tokens answered"
    );
}

/// `audit.stream_to_log`: each committed audit row, including rows written by the command
/// line beside the server, reaches the log as one JSON line of target `audit`, in chain
/// order, with its hash; the tokens themselves appear nowhere.
#[test]
fn committed_audit_rows_stream_to_the_log_as_json_lines() {
    const SECRET: &str = "c3RyZWFtLXRlc3Qtc2VjcmV0LXRoYXQtaXMtbG9uZy0x";
    let dir = tempfile::tempdir().expect("tempdir");
    write_batch_config(
        dir.path(),
        SECRET,
        "log_level = \"warn,audit=info\"\nlog_format = \"json\"\n[audit]\nstream_to_log = true\n",
    );
    let env = [("GUICHET_CONFIG", "idp.toml")];
    let server = Server::start(dir.path(), &env);
    let tokens: Vec<String> = (0..3).map(|_| batch_token(&server, SECRET)).collect();
    // A row the server did not write: a key rotation by the command line.
    let rotated = run(dir.path(), &["keys", "rotate"], &env);
    assert!(rotated.status.success(), "{rotated:?}");
    // The stream looks for new rows every second.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (exit, logs) = server.terminate();
    assert!(exit.success(), "{logs}");
    let streamed: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "audit")
        .collect();
    let types: Vec<&str> = streamed
        .iter()
        .map(|l| l["event_type"].as_str().expect("event_type"))
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "token.issued").count(),
        3,
        "{types:?}\n{logs}"
    );
    assert!(types.contains(&"signing_key.rotated"), "{types:?}");
    let indexes: Vec<i64> = streamed
        .iter()
        .map(|l| l["chain_index"].as_i64().expect("chain_index"))
        .collect();
    assert!(
        indexes.windows(2).all(|w| w[1] == w[0] + 1),
        "in chain order, no gap: {indexes:?}"
    );
    for line in &streamed {
        assert_eq!(line["row_hash"].as_str().map(str::len), Some(64), "{line}");
    }
    let issued = streamed
        .iter()
        .find(|l| l["event_type"] == "token.issued")
        .expect("a token row");
    assert_eq!(issued["client_id"], "batch");
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a token is in the log");
    }
    assert!(!logs.contains(SECRET), "the client secret is in the log");
}

#[test]
fn second_start_reuses_the_generated_master_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Server::start(dir.path(), &[]);
    drop(first);
    let key = std::fs::read_to_string(dir.path().join("data/master.key")).expect("key");
    let second = Server::start(dir.path(), &[]);
    let (_, logs) = second.terminate();
    assert!(logs.contains("loaded from the data directory"), "{logs}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/master.key")).expect("key"),
        key
    );
}

#[test]
fn serves_on_a_fresh_postgres_database_with_json_logs() {
    let db = EmptyPostgres::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = String::from_utf8(run(dir.path(), &["gen-master-key"], &[]).stdout).expect("utf8");
    let server = Server::start(
        dir.path(),
        &[
            ("GUICHET_DATABASE_URL", &db.url),
            ("GUICHET_MASTER_KEY", key.trim()),
            ("GUICHET_LOG_FORMAT", "json"),
        ],
    );
    let (status, body) = ready_json(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    assert!(
        !dir.path().join("data/guichet.db").exists(),
        "no SQLite file when on PostgreSQL"
    );

    let (exit, logs) = server.terminate();
    assert!(exit.success(), "{logs}");
    let mut saw_request = false;
    for line in logs.lines().filter(|l| l.starts_with('{')) {
        let event: serde_json::Value = serde_json::from_str(line).expect("every log line is JSON");
        if event["message"] == "served" {
            saw_request = true;
            assert!(event["span"]["request_id"].is_string(), "{line}");
        }
    }
    assert!(saw_request, "request lines logged:\n{logs}");
    assert!(logs.contains("\"backend\":\"postgres\""), "{logs}");
    assert!(
        !logs.contains(key.trim()),
        "the master key never appears in logs"
    );

    // Migrations were applied at start: `idp migrate` has nothing left to do.
    let out = run(
        dir.path(),
        &["migrate"],
        &[
            ("GUICHET_DATABASE_URL", &db.url),
            ("GUICHET_MASTER_KEY", key.trim()),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 migration(s) applied"));
}

#[test]
fn migrate_applies_then_has_nothing_left() {
    let db = EmptyPostgres::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = String::from_utf8(run(dir.path(), &["gen-master-key"], &[]).stdout).expect("utf8");
    let env = [
        ("GUICHET_DATABASE_URL", db.url.as_str()),
        ("GUICHET_MASTER_KEY", key.trim()),
    ];
    let first = run(dir.path(), &["migrate"], &env);
    assert!(first.status.success(), "{first:?}");
    // Every folder of migrations/postgres, once.
    let folders = std::fs::read_dir(support::browser::repo_root().join("migrations/postgres"))
        .expect("migrations")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert!(folders >= 8, "{folders} migration folders");
    let applied = format!("{folders} migration(s) applied");
    assert!(
        String::from_utf8_lossy(&first.stdout).contains(&applied),
        "{first:?}"
    );
    let again = run(dir.path(), &["migrate"], &env);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 migration(s) applied"));

    let sqlite = run(
        dir.path(),
        &["migrate"],
        &[("GUICHET_DATABASE_URL", "sqlite://state/g.db")],
    );
    assert!(sqlite.status.success(), "{sqlite:?}");
    assert!(dir.path().join("state/g.db").is_file());
}

#[test]
fn readiness_checks_redis_when_configured() {
    let redis = require_redis();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("GUICHET_REDIS_URL", &redis)]);
    let (status, body) = ready_json(&server);
    assert_eq!(
        (status, body["redis"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    drop(server);

    let dead_port = free_port();
    let server = Server::start(
        dir.path(),
        &[(
            "GUICHET_REDIS_URL",
            &format!("redis://127.0.0.1:{dead_port}"),
        )],
    );
    let (status, body) = ready_json(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["redis"], "unavailable");
    assert_eq!(body["database"], "ok");
    assert!(
        !body.to_string().contains("refused"),
        "no internal error text: {body}"
    );
}

#[test]
fn unknown_database_scheme_fails_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        dir.path(),
        &["serve"],
        &[("GUICHET_DATABASE_URL", "mysql://x")],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("database_url") && stderr.contains("GUICHET_DATABASE_URL"),
        "{stderr}"
    );
    assert!(stderr.contains("mysql"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing written before the configuration is valid"
    );
}

#[test]
fn misspelled_keys_fail_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("idp.toml"),
        "bind = \"127.0.0.1:0\"\n[http]\nworkerz = 2\n",
    )
    .expect("write");
    let out = run(dir.path(), &["--config", "idp.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("workerz") && stderr.contains("idp.toml"),
        "{stderr}"
    );

    // The same through GUICHET_CONFIG, and through the default config/idp.toml.
    let out = run(dir.path(), &["serve"], &[("GUICHET_CONFIG", "idp.toml")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("workerz"));
    std::fs::create_dir(dir.path().join("config")).expect("mkdir");
    std::fs::write(
        dir.path().join("config/idp.toml"),
        "pubic_url = \"https://id.example.org\"\n",
    )
    .expect("write");
    let out = run(dir.path(), &["serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pubic_url"));

    let out = run(
        dir.path(),
        &["check-config"],
        &[("GUICHET_CONFIG", "missing.toml")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn insecure_values_fail_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            ("GUICHET_PUBLIC_URL", "http://id.example.org"),
            "public_url",
        ),
        (("GUICHET_MASTER_KEY", "dG9vIHNob3J0"), "master_key"),
        (
            ("GUICHET_DATABASE_URL", "postgres://127.0.0.1/guichet"),
            "master_key",
        ),
    ];
    for ((key, value), named) in cases {
        let out = run(dir.path(), &["serve"], &[(key, value)]);
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
    }
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = String::from_utf8(run(dir.path(), &["gen-master-key"], &[]).stdout).expect("utf8");
    let out = run(
        dir.path(),
        &["check-config"],
        &[("GUICHET_MASTER_KEY", key.trim())],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration is valid"));
    assert!(stdout.contains("[redacted]"));
    assert!(!stdout.contains(key.trim()));
}

#[test]
fn jwks_is_served_and_rotation_reaches_a_running_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("GUICHET_KEYS__REFRESH_INTERVAL_SECS", "1")]);
    let response = client().get(server.url("/jwks")).send().expect("GET /jwks");
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(cache.contains("max-age=60"), "{cache}");
    let jwks: serde_json::Value = response.json().expect("json");
    let before: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect();
    assert_eq!(before.len(), 3, "RS256, ES256 and EdDSA keys: {jwks}");
    assert!(!jwks.to_string().contains("\"d\""), "no private members");

    let out = run(dir.path(), &["keys", "rotate", "--alg", "ES256"], &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("ES256 rotated"), "{stdout}");

    // The running instance publishes the new key after its next reload, without restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jwks: serde_json::Value = client()
            .get(server.url("/jwks"))
            .send()
            .expect("GET")
            .json()
            .expect("json");
        let now_published = jwks["keys"].as_array().expect("keys").len();
        if now_published == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "rotation not picked up: {jwks}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let list = run(dir.path(), &["keys", "list"], &[]);
    let listing = String::from_utf8_lossy(&list.stdout);
    assert_eq!(listing.matches(" active ").count(), 3, "{listing}");
    assert_eq!(
        listing.matches(" retiring ").count() + listing.matches(" retired ").count(),
        1,
        "{listing}"
    );

    let bad = run(dir.path(), &["keys", "rotate", "--alg", "HS256"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HS256"));
}

#[test]
fn expired_rows_are_purged_in_the_background() {
    use idp::store::login_transactions::{self, LoginTransactionRecord};
    use idp::store::DatabaseTarget;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("idp.toml"),
        "[[clients]]\nid = \"portal\"\nname = \"Portal\"\nsecret = \"cHVyZ2UtdGVzdC1zZWNyZXQtdGhhdC1pcy1sb25n\"\nredirect_uris = [\"http://localhost:9000/cb\"]\n",
    )
    .expect("config");
    let server = Server::start(
        dir.path(),
        &[
            ("GUICHET_CONFIG", "idp.toml"),
            ("GUICHET_DATABASE__PURGE_INTERVAL_SECS", "1"),
        ],
    );
    let store = support::open_store(DatabaseTarget::Sqlite(dir.path().join("data/guichet.db")));
    let t = idp::store::now();
    let record = |id: &str, expires_at| LoginTransactionRecord {
        id: id.into(),
        client_id: "portal".into(),
        request: "{}".into(),
        user_id: None,
        step: "password".into(),
        created_at: t,
        expires_at,
        data: "{}".into(),
    };
    let mut conn = store.connection().expect("conn");
    login_transactions::insert(&mut conn, &record("old", t - chrono::Duration::minutes(1)))
        .expect("insert");
    login_transactions::insert(&mut conn, &record("live", t + chrono::Duration::hours(1)))
        .expect("insert");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // Looking the rows up at an instant when both were live tells which ones still exist.
        let remaining: Vec<String> = ["old", "live"]
            .into_iter()
            .filter(|id| {
                login_transactions::find_live(&mut conn, id, t - chrono::Duration::hours(2))
                    .expect("q")
                    .is_some()
            })
            .map(str::to_string)
            .collect();
        if remaining == ["live"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired row not purged: {remaining:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
}

/// Two instances on one PostgreSQL database: a rotation made with the CLI reaches both without
/// restart; tokens signed before it still validate against either JWKS, and new tokens from
/// either instance carry the new key.
#[test]
fn rotation_reaches_every_instance_of_a_shared_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("idp.toml"),
        "[[clients]]\nid = \"batch\"\nname = \"Batch\"\n\
         secret = \"cm90YXRpb24tdGVzdC1zZWNyZXQtdGhhdC1pcy1sb25n\"\n\
         grants = [\"client_credentials\"]\nscopes = [\"members.read\"]\nid_token_alg = \"ES256\"\n",
    )
    .expect("config");
    let pg = EmptyPostgres::create();
    let key = idp::crypto::MasterKey::generate().to_base64();
    let env = [
        ("GUICHET_CONFIG", "idp.toml"),
        ("GUICHET_MASTER_KEY", key.as_str()),
        ("GUICHET_DATABASE_URL", pg.url.as_str()),
        ("GUICHET_KEYS__REFRESH_INTERVAL_SECS", "1"),
    ];
    let instances = [
        Server::start(dir.path(), &env),
        Server::start(dir.path(), &env),
    ];
    let token =
        |server: &Server| batch_token(server, "cm90YXRpb24tdGVzdC1zZWNyZXQtdGhhdC1pcy1sb25n");
    let kid = |token: &str| -> String {
        jsonwebtoken::decode_header(token)
            .expect("header")
            .kid
            .expect("kid")
    };
    let validates = |server: &Server, token: &str| -> bool {
        let jwks: jsonwebtoken::jwk::JwkSet = client()
            .get(server.url("/jwks"))
            .send()
            .expect("GET /jwks")
            .json()
            .expect("jwks");
        let Some(jwk) = jwks.find(&kid(token)) else {
            return false;
        };
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&["http://localhost:8080"]);
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
            &v,
        )
        .is_ok()
    };
    let before = token(&instances[0]);
    let old_kid = kid(&before);
    assert_eq!(kid(&token(&instances[1])), old_kid, "one key for both");

    let out = run(dir.path(), &["keys", "rotate", "--alg", "ES256"], &env);
    assert!(out.status.success(), "{out:?}");

    // Each instance signs with the new key after its reloads, with no restart.
    for server in &instances {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let fresh = token(server);
            if kid(&fresh) != old_kid {
                assert!(validates(server, &fresh), "new token validates");
                break;
            }
            assert!(Instant::now() < deadline, "rotation not picked up");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // The token signed before the rotation still validates against both JWKS.
    for server in &instances {
        assert!(validates(server, &before), "old token still validates");
    }
}

/// `idp audit checkpoint` and `idp audit verify` on both backends: intact, then tampered.
#[test]
fn audit_commands_verify_and_checkpoint_the_chain() {
    use diesel::connection::SimpleConnection;
    let pg = EmptyPostgres::create();
    for postgres in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = String::from_utf8(run(dir.path(), &["gen-master-key"], &[]).stdout)
            .expect("utf8")
            .trim()
            .to_string();
        let database = if postgres {
            pg.url.clone()
        } else {
            "sqlite://data/guichet.db".to_string()
        };
        let env = [
            ("GUICHET_DATABASE_URL", database.as_str()),
            ("GUICHET_MASTER_KEY", key.as_str()),
        ];
        let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).to_string();
        assert!(run(dir.path(), &["migrate"], &env).status.success());
        let empty = run(dir.path(), &["audit", "checkpoint"], &env);
        assert!(text(&empty).contains("nothing to sign"), "{empty:?}");
        // Two key rotations: two audit events.
        for _ in 0..2 {
            let out = run(dir.path(), &["keys", "rotate", "--alg", "ES256"], &env);
            assert!(out.status.success(), "{out:?}");
        }
        let out = run(dir.path(), &["audit", "checkpoint"], &env);
        assert!(text(&out).contains("checkpoint signed at row 2"), "{out:?}");
        let out = run(dir.path(), &["audit", "verify"], &env);
        assert!(out.status.success(), "{out:?}");
        assert!(
            text(&out).contains("audit chain intact: 2 rows, 1 checkpoints (1 signatures checked"),
            "{out:?}"
        );

        // Someone with database access edits the first row.
        let target = if postgres {
            idp::store::DatabaseTarget::Postgres(pg.url.clone())
        } else {
            idp::store::DatabaseTarget::Sqlite(dir.path().join("data/guichet.db"))
        };
        let store = support::open_store(target);
        let tamper = if postgres {
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
             UPDATE audit_events SET actor = 'someone-else' WHERE chain_index = 1;"
        } else {
            "DROP TRIGGER audit_events_no_update;
             UPDATE audit_events SET actor = 'someone-else' WHERE chain_index = 1;"
        };
        store
            .connection()
            .expect("conn")
            .batch_execute(tamper)
            .expect("tamper");
        let out = run(dir.path(), &["audit", "verify"], &env);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            text(&out).contains("BROKEN after 0 good rows: row 1 was altered"),
            "{out:?}"
        );
    }
}

/// `idp roles grant` / `revoke`: the role is stored, recorded in the audit log, and bad
/// input is refused with a message naming what is wrong.
#[test]
fn roles_are_granted_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("GUICHET_DATABASE_URL", "sqlite://data/guichet.db")];
    assert!(run(dir.path(), &["migrate"], &env).status.success());
    let store = support::open_store(idp::store::DatabaseTarget::Sqlite(
        dir.path().join("data/guichet.db"),
    ));
    let user = support::server::person_with_emailed_codes(
        &store,
        "auditrice@example.org",
        "Correct-Horse-Battery-9",
        None,
    );
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let grant = [
        "roles",
        "grant",
        "--email",
        "auditrice@example.org",
        "--role",
    ];
    let out = run(dir.path(), &[&grant[..], &["auditor"]].concat(), &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("auditor granted to auditrice@example.org"));
    let has = || {
        idp::store::roles::has(
            &mut store.connection().expect("conn"),
            &user.id,
            idp::store::roles::Role::Auditor,
        )
        .expect("query")
    };
    assert!(has());
    let out = run(
        dir.path(),
        &[&grant[..], &["auditor", "--json"]].concat(),
        &env,
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["changed"], false, "already held: nothing to do");
    let out = run(dir.path(), &[&grant[..], &["root"]].concat(), &env);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown role `root`"), "{}", text(&out));
    // Standard output is for answers (and `--json`): a failure and the log go to standard
    // error, said once, without colour codes outside a terminal.
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("unknown role").count(), 1, "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    // A command's input is not the configuration: the message does not say it is.
    assert!(
        !text(&out).contains("configuration error"),
        "{}",
        text(&out)
    );
    let out = run(
        dir.path(),
        &[
            "roles",
            "grant",
            "--email",
            "nobody@example.org",
            "--role",
            "auditor",
        ],
        &env,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("error: no person has the email address"),
        "{}",
        text(&out)
    );
    let out = run(
        dir.path(),
        &[
            "roles",
            "revoke",
            "--email",
            "auditrice@example.org",
            "--role",
            "auditor",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!has());
    let events: Vec<String> = idp::store::audit::recent(&mut store.connection().expect("conn"), 10)
        .expect("audit")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(events, vec!["role.revoked", "role.granted"]);
}

/// Retention with `idp audit archive`: old events go to a new JSON Lines file, a checkpoint is
/// signed at the last of them, they leave the table, and the rest still verifies from that
/// checkpoint; the append-only guard is back afterwards. On both backends.
#[test]
fn audit_archive_exports_checkpoints_then_prunes() {
    use diesel::connection::SimpleConnection;
    let pg = EmptyPostgres::create();
    for postgres in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = idp::crypto::MasterKey::generate().to_base64();
        let (database, target) = if postgres {
            (
                pg.url.clone(),
                idp::store::DatabaseTarget::Postgres(pg.url.clone()),
            )
        } else {
            (
                "sqlite://data/guichet.db".to_string(),
                idp::store::DatabaseTarget::Sqlite(dir.path().join("data/guichet.db")),
            )
        };
        let env = [
            ("GUICHET_DATABASE_URL", database.as_str()),
            ("GUICHET_MASTER_KEY", key.as_str()),
        ];
        let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).to_string();
        assert!(run(dir.path(), &["migrate"], &env).status.success());
        let store = support::open_store(target);
        let mut conn = store.connection().expect("conn");
        // Six events from January, then three from today (`keys rotate`).
        let january = chrono::NaiveDate::from_ymd_opt(2026, 1, 10)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("date");
        for i in 0..6 {
            idp::store::audit::append(
                &mut conn,
                &idp::store::audit::NewAuditEvent {
                    id: uuid::Uuid::new_v4().to_string(),
                    occurred_at: january,
                    event_type: "token.issued".into(),
                    actor: None,
                    subject: Some(format!("old-{i}")),
                    client_id: None,
                    ip: None,
                    user_agent: None,
                    request_id: None,
                    detail: "{}".into(),
                },
            )
            .expect("append");
        }
        assert!(run(dir.path(), &["keys", "rotate"], &env).status.success());
        let archive_file = dir.path().join("audit-2026-01.jsonl");
        let args = ["audit", "archive", "--before", "2026-06-01", "--out"];
        let out = run(
            dir.path(),
            &[&args[..], &[archive_file.to_str().expect("utf8")]].concat(),
            &env,
        );
        assert!(out.status.success(), "{out:?}");
        assert!(
            text(&out).contains("archived rows through 6 (6 rows)"),
            "{out:?}"
        );
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&archive_file)
            .expect("archive")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().all(|l| l["occurred_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-01-10"))));
        assert_eq!(lines[0]["chain_index"], 1);
        assert_eq!(lines[5]["chain_index"], 6);
        let out = run(dir.path(), &["audit", "verify"], &env);
        assert!(out.status.success(), "{out:?}");
        assert!(text(&out).contains("audit chain intact: 4 rows"), "{out:?}");
        assert!(text(&out).contains("6 rows archived"), "{out:?}");
        let left = idp::store::audit::recent(&mut conn, 10).expect("rows");
        assert_eq!(left.len(), 4, "three rotations and the archive event");
        assert_eq!(left[0].event_type, "audit.archived");
        // Nothing older is left; the file is never overwritten.
        let out = run(
            dir.path(),
            &[&args[..], &[archive_file.to_str().expect("utf8")]].concat(),
            &env,
        );
        assert!(text(&out).contains("nothing to archive"), "{out:?}");
        // The append-only guard is back.
        assert!(
            conn.batch_execute("DELETE FROM audit_events").is_err(),
            "deleting audit rows is refused again"
        );
        // Without the anchoring checkpoint the missing start is a break.
        conn.batch_execute("DELETE FROM audit_checkpoints")
            .expect("remove the checkpoint");
        let out = run(dir.path(), &["audit", "verify"], &env);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            text(&out).contains("row 1 is missing (the next row is 7)"),
            "{out:?}"
        );
    }
}

/// `idp users import`: 100,000 members with 1% invalid rows of every kind. The valid rows are
/// imported, each invalid row is reported with its line, and a second run imports nothing.
#[test]
fn members_are_imported_from_csv_with_errors_by_line_and_idempotently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("GUICHET_DATABASE_URL", "sqlite://data/guichet.db")];
    assert!(run(dir.path(), &["migrate"], &env).status.success());
    let mut csv = String::from("email,member_code,given_name,family_name,locale\n");
    let mut invalid_lines = Vec::new();
    for i in 0..100_000u32 {
        let line = u64::from(i) + 2;
        let code = match i % 4 {
            0 => format!("{:05}", i % 100_000),
            1 => format!("R{:05}", i % 100_000),
            2 => format!("E{:08}", i),
            _ => format!("500{:05}", i % 100_000),
        };
        let row = if i % 100 == 99 {
            invalid_lines.push(line);
            match (i / 100) % 5 {
                0 => format!("not-an-email,{code},Marie,Tremblay,fr-CA"),
                1 => format!("m{i}@example.org,X{i},Marie,Tremblay,fr-CA"),
                2 => format!("m{i}@example.org,{code},Marie,,en"),
                3 => format!("m{i}@example.org,{code},Marie,Tremblay,de"),
                // The same address as the row before it (with another case).
                _ => format!("M{}@Example.org,,Marie,Tremblay,en", i - 1),
            }
        } else {
            format!("m{i}@example.org,{code},Marie,Tremblay-{i},fr-CA")
        };
        csv.push_str(&row);
        csv.push('\n');
    }
    std::fs::write(dir.path().join("members.csv"), csv).expect("csv");
    let out = run(
        dir.path(),
        &["users", "import", "members.csv", "--json"],
        &env,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(1),
        "invalid rows make the exit status 1"
    );
    assert_eq!(report["rows"], 100_000);
    assert_eq!(report["imported"], 99_000, "{}", report["invalid"][0]);
    assert_eq!(report["already_present"], 0);
    let reported: Vec<u64> = report["invalid"]
        .as_array()
        .expect("invalid")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(reported, invalid_lines);
    let messages: Vec<&str> = report["invalid"]
        .as_array()
        .expect("invalid")
        .iter()
        .take(5)
        .map(|e| e["message"].as_str().expect("message"))
        .collect();
    assert!(
        messages[0].contains("not a valid email address"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("member code `X199` is not valid"),
        "{messages:?}"
    );
    assert!(messages[2].contains("family_name is empty"), "{messages:?}");
    assert!(messages[3].contains("locale `de`"), "{messages:?}");
    assert!(messages[4].contains("already on line"), "{messages:?}");

    let store = support::open_store(idp::store::DatabaseTarget::Sqlite(
        dir.path().join("data/guichet.db"),
    ));
    let count = || idp::store::users::count(&mut store.connection().expect("conn")).expect("count");
    assert_eq!(count(), 99_000);
    let marie =
        idp::store::users::find_by_email(&mut store.connection().expect("conn"), "m5@example.org")
            .expect("find")
            .expect("imported");
    assert!(marie.must_reset && marie.password_hash.is_none());
    assert_eq!(marie.member_code.as_deref(), Some("R00005"));

    // Again: nothing new, the same rows reported, and a summary in text.
    let out = run(dir.path(), &["users", "import", "members.csv"], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains(&format!("line {}: ", invalid_lines[0])),
        "{text}"
    );
    assert!(
        text.contains("100000 rows: 0 imported, 99000 already present, 1000 invalid"),
        "{}",
        text.lines().last().unwrap_or_default()
    );
    assert_eq!(count(), 99_000);
    let imports = idp::store::audit::recent(&mut store.connection().expect("conn"), 5)
        .expect("audit")
        .into_iter()
        .filter(|e| e.event_type == "users.imported")
        .count();
    assert_eq!(imports, 2, "each run is recorded");
    // A file without the required columns is refused as a whole.
    std::fs::write(dir.path().join("bad.csv"), "mail,name\na@example.org,A\n").expect("csv");
    let out = run(dir.path(), &["users", "import", "bad.csv"], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lacks the column `email`"));
}

/// The helpdesk's operations from the command line: find, unlock, reset-2fa, set-email, and
/// the client commands; each recorded with the reason, actor `cli`.
#[test]
fn helpdesk_and_client_operations_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("GUICHET_DATABASE_URL", "sqlite://data/guichet.db"),
        ("GUICHET_HELP__PHONE", "514 555-0100"),
    ];
    assert!(run(dir.path(), &["migrate"], &env).status.success());
    let store = support::open_store(idp::store::DatabaseTarget::Sqlite(
        dir.path().join("data/guichet.db"),
    ));
    let user = support::server::person_with_emailed_codes(
        &store,
        "marie@example.org",
        "Correct-Horse-Battery-9",
        Some("50012345"),
    );
    let json = |args: &[&str]| {
        let out = run(dir.path(), &[args, &["--json"]].concat(), &env);
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), value)
    };
    let (ok, found) = json(&["users", "find", "50012345"]);
    assert!(ok);
    assert_eq!(found["people"][0]["email"], "marie@example.org");
    assert_eq!(found["people"][0]["state"], "active");
    assert_eq!(found["people"][0]["second_factor"], "email");
    let (ok, found) = json(&["users", "find", "5001234"]);
    assert!(!ok);
    assert!(found["error"]
        .as_str()
        .expect("error")
        .contains("member code is not valid"));
    let (_, found) = json(&["users", "find", "Roy"]);
    assert_eq!(
        found["people"].as_array().expect("people").len(),
        1,
        "by name"
    );
    assert_eq!(found["more"], false, "no more than listed");

    let (ok, _) = json(&[
        "users",
        "unlock",
        "marie@example.org",
        "--reason",
        "locked by mistake",
    ]);
    assert!(ok);
    let (ok, _) = json(&["users", "reset-2fa", "50012345", "--reason", "lost phone"]);
    assert!(ok);
    let (ok, _) = json(&[
        "users",
        "set-email",
        &user.id,
        "--email",
        "marie.t@example.org",
        "--reason",
        "new address",
    ]);
    assert!(ok);
    let (ok, refused) = json(&[
        "users",
        "set-email",
        "marie@example.org",
        "--email",
        "marie@example.org",
        "--reason",
        "x",
    ]);
    assert!(!ok);
    assert!(refused["error"]
        .as_str()
        .expect("error")
        .contains("already the person's contact email"));
    let out = run(dir.path(), &["users", "unlock", "marie@example.org"], &env);
    assert!(!out.status.success(), "a reason is required");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
    let out = run(
        dir.path(),
        &["users", "unlock", "marie@example.org", "--reason", " "],
        &env,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a reason is required"));

    let mut conn = store.connection().expect("conn");
    let now = idp::store::users::find_by_id(&mut conn, &user.id)
        .expect("find")
        .expect("user");
    assert_eq!(now.mfa_method, idp::store::users::MfaMethod::None);
    assert!(now.must_reset);
    assert_eq!(
        now.email, "marie@example.org",
        "the change waits for the code"
    );
    let outbox = mail_worker::Outbox::open(dir.path().join("data/outbox")).expect("outbox");
    let jobs = outbox.messages().expect("messages");
    assert!(jobs.iter().any(|j| j.recipient == "marie.t@example.org"
        && j.template == mail_queue::Template::EmailChangeCode));
    // Every message says how to reach the helpdesk its "contact us" means.
    for job in &jobs {
        assert_eq!(job.parameters[mail_queue::PARAM_HELP_PHONE], "514 555-0100");
        let text = mail_worker::compose::compose(job).expect("composed").text;
        assert!(text.contains(": 514 555-0100\n"), "{text}");
    }
    assert!(jobs.iter().any(|j| j.recipient == "marie@example.org"
        && j.template == mail_queue::Template::EmailChangeNotice));

    // Clients.
    let (ok, added) = json(&[
        "clients",
        "add",
        "--id",
        "messaging",
        "--name",
        "Messagerie sécurisée",
        "--redirect-uri",
        "https://messagerie.example.org/callback",
        "--reason",
        "new portal",
    ]);
    assert!(ok, "{added}");
    let secret = added["client_secret"].as_str().expect("secret").to_string();
    assert!(secret.len() >= 43);
    let (ok, refused) = json(&[
        "clients",
        "add",
        "--id",
        "bad",
        "--name",
        "Bad",
        "--redirect-uri",
        "http://portal.example.org/cb",
        "--reason",
        "x",
    ]);
    assert!(!ok);
    assert!(
        refused["error"].as_str().expect("error").contains("https"),
        "{refused}"
    );
    let (ok, rotated) = json(&[
        "clients",
        "rotate-secret",
        "messaging",
        "--reason",
        "leaked",
    ]);
    assert!(ok);
    assert_ne!(rotated["client_secret"].as_str().expect("secret"), secret);
    let (_, listed) = json(&["clients", "list"]);
    assert!(listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .any(|c| c["id"] == "messaging"));

    let events = idp::store::audit::recent(&mut conn, 20).expect("audit");
    for (event_type, reason) in [
        ("account.unlocked", "locked by mistake"),
        ("mfa.reset", "lost phone"),
        ("email.change_requested", "new address"),
        ("client.created", "new portal"),
        ("client.secret_rotated", "leaked"),
    ] {
        let e = events
            .iter()
            .find(|e| e.event_type == event_type)
            .unwrap_or_else(|| panic!("no {event_type}"));
        assert_eq!(e.actor.as_deref(), Some("cli"));
        let detail: serde_json::Value = serde_json::from_str(&e.detail).expect("detail");
        assert_eq!(detail["reason"], reason, "{event_type}");
        assert!(!e.detail.contains(&secret));
    }
}

/// The helpdesk every "contact us" means, at the foot of every page when configured, in the
/// page's language; a value that cannot be right is refused at start, naming its key.
#[test]
fn the_foot_of_every_page_says_how_to_reach_the_helpdesk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("GUICHET_HELP__PHONE", "514 555-0100 poste 2"),
            ("GUICHET_HELP__EMAIL", "soutien@example.org"),
            ("GUICHET_HELP__URL", "https://example.org/nous-joindre"),
        ],
    );
    let foot = |server: &Server, path: &str, lang: &str| {
        let body = page_in(server, path, lang);
        let start = body.find("<footer>").expect("footer");
        body[start..start + body[start..].find("</footer>").expect("end")].to_string()
    };
    let en = foot(&server, "/login/reset", "en");
    assert_eq!(
        en,
        "<footer><p>Need help? Contact us: <a href=\"tel:5145550100\">514 555-0100 poste 2</a> · \
         <a href=\"mailto:soutien@example.org\">soutien@example.org</a> · \
         <a href=\"https://example.org/nous-joindre\">other ways to reach us</a></p>"
    );
    let fr = foot(&server, "/nope", "fr-CA");
    assert!(
        fr.starts_with(
            "<footer><p>Besoin d’aide? Communiquez avec nous : <a href=\"tel:5145550100\">"
        ) && fr.contains("autres façons de nous joindre"),
        "{fr}"
    );
    drop(server);

    // One of them alone, with no separator left over.
    let server = Server::start(
        dir.path(),
        &[("GUICHET_HELP__EMAIL", "soutien@example.org")],
    );
    assert_eq!(
        foot(&server, "/login/reset", "en"),
        "<footer><p>Need help? Contact us: \
         <a href=\"mailto:soutien@example.org\">soutien@example.org</a></p>"
    );
    drop(server);

    for (key, value) in [
        ("GUICHET_HELP__PHONE", "call us"),
        ("GUICHET_HELP__EMAIL", "soutien"),
        ("GUICHET_HELP__URL", "http://example.org/contact"),
    ] {
        let out = run(dir.path(), &["check-config"], &[(key, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}
