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
use std::path::PathBuf;
use std::process::Command;

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

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn sign_in_pages_in_chromium() {
    let root = repo_root();
    let script_dir = root.join("tests/browser");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run scripts/test.sh, which installs it"
    );
    assert!(
        script_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/test.sh, which runs npm ci in tests/browser"
    );

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
    let output = Command::new("node")
        .arg("journey.mjs")
        .current_dir(&script_dir)
        .env("AUTHORIZE_URL", &authorize)
        .env("CALLBACK", &callback)
        .env("OUTBOX_DIR", deployment.dir.path().join("data/outbox"))
        .env("ARTIFACTS_DIR", &artifacts)
        .env("FIRST_EMAIL", "premiere@example.org")
        .env("EMAIL_USER", "courriel@example.org")
        .env("PASSWORD", "Correct-Horse-Battery-9")
        .env("NEW_PASSWORD", "Lilas-Quartz-Boreal-42")
        .output()
        .expect("node is missing: run scripts/test.sh, which installs it");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser journeys failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser journeys passed"), "{stdout}");
    let screenshots = std::fs::read_dir(&artifacts)
        .expect("artifacts")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(screenshots >= 10, "{screenshots} screenshots");
}
