//! The sign-in pages in real headless Chromium (Debian's `/usr/bin/chromium`, driven by
//! playwright-core from `tests/browser`): first login with an authenticator app read from the
//! page, a later sign-in with a fresh code, the emailed-code journey, and the FR/EN switch.
//! Screenshots of each page land in `artifacts/browser/`.
//!
//! `scripts/test.sh` installs Chromium and the Node packages; without them this test fails
//! with a message saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use std::io::{BufRead, BufReader, Write};

use idp::store::users::{self, MfaSetting, NewUser};
use support::free_port;
use support::server::{cheap_password_hash, Deployment};

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A stand-in for the portal's callback page: answers every GET with a small page.
fn portal_callback() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let body = "<!doctype html><title>Portail</title><h1>Portail des membres</h1>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn sign_in_pages_in_chromium() {
    let root = support::browser::repo_root();
    support::browser::require_browser();

    let callback_port = portal_callback();
    let callback = format!("http://127.0.0.1:{callback_port}/callback");
    let config = format!(
        r#"
[sign_in]
totp_issuer = "CPAQCPROD"

[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
redirect_uris = ["{callback}"]
"#
    );
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let deployment = Deployment::start(&config, false, port, &[("GUICHET_PUBLIC_URL", &issuer)]);
    let mut conn = deployment.store.connection().expect("conn");
    let person = |email: &str, password: Option<&str>| NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.into(),
        member_code: None,
        given_name: "Marie".into(),
        family_name: "Tremblay".into(),
        locale: "fr-CA".into(),
        password_hash: password.map(cheap_password_hash),
        must_reset: password.is_none(),
    };
    users::insert(
        &mut conn,
        &person("premiere@example.org", None),
        idp::store::now(),
    )
    .expect("imported member");
    let member = users::insert(
        &mut conn,
        &person("courriel@example.org", Some("Correct-Horse-Battery-9")),
        idp::store::now(),
    )
    .expect("member");
    users::set_mfa(&mut conn, &member.id, &MfaSetting::Email, idp::store::now()).expect("mfa");

    let callback_encoded: String =
        url::form_urlencoded::byte_serialize(callback.as_bytes()).collect();
    let authorize = format!(
        "{issuer}/authorize?client_id=file-portal&redirect_uri={callback_encoded}\
         &response_type=code&scope=openid+email&state=browser-state&nonce=n\
         &code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let artifacts = root.join("artifacts/browser");
    support::browser::run_script(
        "journey.mjs",
        "browser",
        &[
            ("AUTHORIZE_URL", authorize.clone()),
            ("CALLBACK", callback.clone()),
            (
                "OUTBOX_DIR",
                deployment
                    .dir
                    .path()
                    .join("data/outbox")
                    .display()
                    .to_string(),
            ),
            ("FIRST_EMAIL", "premiere@example.org".into()),
            ("EMAIL_USER", "courriel@example.org".into()),
            ("PASSWORD", "Correct-Horse-Battery-9".into()),
            ("NEW_PASSWORD", "Lilas-Quartz-Boreal-42".into()),
        ],
        "browser journeys passed",
    );
    let screenshots = std::fs::read_dir(&artifacts)
        .expect("artifacts")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(screenshots >= 10, "{screenshots} screenshots");
}
