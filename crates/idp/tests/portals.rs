//! The demo portals (`portals` crate, built on `openidconnect`) against the real `idp`:
//!
//! - the back-channel logout receiver refuses a bad signature, a wrong audience, a missing
//!   events claim and a replayed `jti`, leaving the session in place, and ends it on a valid
//!   token;
//! - in headless Chromium: first login from the file portal, single sign-on at the ATIP
//!   portal, the account page, logout at the ATIP portal ending the file portal's session,
//!   and the ATIP guest path (`tests/browser/portals.mjs`);
//! - the same browser journey with two `idp serve` instances on one PostgreSQL database and
//!   one Redis, behind nginx (round-robin), mail going through the mail worker to a real SMTP
//!   server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use idp::store::users::{self, MfaSetting, NewUser};
use serde_json::json;
use support::free_port;
use support::journey::{authorize_and_sign_in, cookie_pair, location, no_redirects};
use support::server::{cheap_password_hash, Deployment, Server};

const FILE_SECRET: &str = "ZmlsZS1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ";
const ATIP_SECRET: &str = "YXRpcC1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ";
const MEMBER: &str = "marie.tremblay@example.org";
const NEW_PASSWORD: &str = "Lilas-Quartz-Boreal-42";

/// The two portals registered as clients, each with its back-channel logout URI.
fn clients_config(file_url: &str, atip_url: &str) -> String {
    format!(
        r#"
[sign_in]
totp_issuer = "CPAQCPROD"

[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "{FILE_SECRET}"
redirect_uris = ["{file_url}/callback"]
post_logout_redirect_uris = ["{file_url}/"]
backchannel_logout_uri = "{file_url}/backchannel-logout"

[[clients]]
id = "atip-portal"
name = "AIPRP en ligne"
first_party = true
secret = "{ATIP_SECRET}"
redirect_uris = ["{atip_url}/callback"]
post_logout_redirect_uris = ["{atip_url}/"]
backchannel_logout_uri = "{atip_url}/backchannel-logout"
"#
    )
}

/// Both portals, in-process on their own runtime thread, trusting `issuer`.
struct Portals {
    file: String,
    atip: String,
}

impl Portals {
    fn start(issuer: &str) -> Self {
        let (file_port, atip_port) = (free_port(), free_port());
        let file = format!("http://127.0.0.1:{file_port}");
        let atip = format!("http://127.0.0.1:{atip_port}");
        let settings = (
            portals::PortalSettings::new(
                portals::PortalKind::FilePortal,
                &file,
                issuer,
                FILE_SECRET,
            )
            .expect("file portal settings"),
            portals::PortalSettings::new(portals::PortalKind::Atip, &atip, issuer, ATIP_SECRET)
                .expect("ATIP portal settings"),
        );
        let (ready, bound) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let f = portals::app::bind(settings.0, ([127, 0, 0, 1], file_port).into())
                    .expect("bind the file portal");
                let a = portals::app::bind(settings.1, ([127, 0, 0, 1], atip_port).into())
                    .expect("bind the ATIP portal");
                ready.send(()).expect("ready");
                let _ = tokio::join!(f.server, a.server);
            });
        });
        bound
            .recv_timeout(Duration::from_secs(10))
            .expect("portals bound");
        Self { file, atip }
    }
}

fn imported_member() -> NewUser {
    NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        email: MEMBER.into(),
        member_code: Some("12345".into()),
        given_name: "Marie".into(),
        family_name: "Tremblay".into(),
        locale: "fr-CA".into(),
        password_hash: None,
        must_reset: true,
    }
}

// ---------------------------------------------------------------------------------------------
// The back-channel logout receiver
// ---------------------------------------------------------------------------------------------

/// Whether the file portal's home page shows the member signed in for `cookie`.
fn signed_in_at(http: &reqwest::blocking::Client, portal: &str, cookie: &str) -> bool {
    let page = http
        .get(format!("{portal}/"))
        .header("Cookie", cookie)
        .send()
        .expect("portal home")
        .text()
        .expect("body");
    page.contains("id=\"member-name\"")
}

#[test]
fn back_channel_logout_receiver_checks_every_token() {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let portals = Portals::start(&issuer);
    let deployment = Deployment::start(
        &clients_config(&portals.file, &portals.atip),
        false,
        port,
        &[("GUICHET_PUBLIC_URL", &issuer)],
    );
    let password = "Correct-Horse-Battery-9";
    let user = {
        let mut conn = deployment.store.connection().expect("conn");
        let mut new = imported_member();
        new.password_hash = Some(cheap_password_hash(password));
        new.must_reset = false;
        let user = users::insert(&mut conn, &new, idp::store::now()).expect("member");
        users::set_mfa(&mut conn, &user.id, &MfaSetting::Email, idp::store::now()).expect("mfa");
        user
    };

    // Sign in at the file portal: portal -> Guichet (password, emailed code) -> portal.
    let http = no_redirects();
    let r = http
        .get(format!("{}/login", portals.file))
        .send()
        .expect("login");
    assert_eq!(r.status(), 303);
    let portal_cookie = cookie_pair(&r, "file_portal_visit").expect("visitor cookie");
    let r = authorize_and_sign_in(
        &http,
        &issuer,
        &location(&r),
        deployment.dir.path(),
        MEMBER,
        password,
    );
    let back = location(&r);
    assert!(
        back.starts_with(&format!("{}/callback?", portals.file)),
        "{back}"
    );
    let r = http
        .get(&back)
        .header("Cookie", &portal_cookie)
        .send()
        .expect("callback");
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    assert!(signed_in_at(&http, &portals.file, &portal_cookie));

    // Logout tokens signed with Guichet's own keys, as Guichet would sign them.
    let sid = {
        let mut conn = deployment.store.connection().expect("conn");
        idp::store::sso_sessions::live_for_user(&mut conn, &user.id, idp::store::now())
            .expect("sessions")[0]
            .sid
            .clone()
    };
    let ring = idp::oidc::keys::SigningKeyRing::load(
        &mut deployment.store.connection().expect("conn"),
        deployment.master_key.clone(),
        chrono::Duration::zero(),
        idp::store::now(),
    )
    .expect("keys");
    let signer = ring
        .signer(idp::oidc::keys::SigningAlg::Rs256)
        .expect("signer");
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, sid: &str, events: bool| {
        let mut c = json!({
            "iss": issuer, "aud": aud, "iat": now, "exp": now + 120,
            "jti": uuid::Uuid::new_v4().to_string(), "sub": user.id, "sid": sid,
        });
        if events {
            c["events"] = json!({ portals::logout_token::BACKCHANNEL_EVENT: {} });
        }
        c
    };
    let sign = |c: &serde_json::Value| signer.sign_jwt("logout+jwt", c).expect("sign");
    let post = |token: &str| {
        http.post(format!("{}/backchannel-logout", portals.file))
            .form(&[("logout_token", token)])
            .send()
            .expect("back-channel logout")
    };
    let refused = |token: &str, why: &str| {
        let r = post(token);
        assert_eq!(r.status(), 400, "{why}");
        let body: serde_json::Value = r.json().expect("json error");
        assert_eq!(body["error"], "invalid_request", "{why}");
        assert!(
            signed_in_at(&http, &portals.file, &portal_cookie),
            "{why}: the session must stay"
        );
    };

    // A bad signature: a valid token with one signature character changed.
    let valid = sign(&claims("file-portal", &sid, true));
    let at = valid.rfind('.').expect("three parts") + 10;
    let mut forged = valid.clone().into_bytes();
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    refused(&String::from_utf8(forged).expect("ascii"), "bad signature");
    // Wrong audience (a token meant for the other portal).
    refused(&sign(&claims("atip-portal", &sid, true)), "wrong audience");
    // No events claim.
    refused(&sign(&claims("file-portal", &sid, false)), "missing events");
    // Not a JWT at all, and no token.
    refused("not-a-token", "malformed");
    let r = http
        .post(format!("{}/backchannel-logout", portals.file))
        .form(&[("other", "x")])
        .send()
        .expect("post");
    assert_eq!(r.status(), 400);
    // A replayed jti: a valid token for another session is accepted (it ends nothing here),
    // then the very same token is refused.
    let other = sign(&claims("file-portal", "another-session", true));
    assert_eq!(post(&other).status(), 200);
    assert!(signed_in_at(&http, &portals.file, &portal_cookie));
    refused(&other, "replayed jti");

    // A valid token for this session ends it.
    assert_eq!(post(&valid).status(), 200);
    assert!(!signed_in_at(&http, &portals.file, &portal_cookie));
    drop(deployment);
}

// ---------------------------------------------------------------------------------------------
// The browser journey
// ---------------------------------------------------------------------------------------------

/// Runs `portals.mjs` with `env`, as the imported member.
fn run_portal_journey(env: &[(&str, String)], artifacts: &str) -> String {
    let mut all = vec![
        ("EMAIL", MEMBER.to_string()),
        ("NEW_PASSWORD", NEW_PASSWORD.to_string()),
    ];
    all.extend(env.iter().cloned());
    support::browser::run_script("portals.mjs", artifacts, &all, "portal journeys passed")
}

#[test]
fn single_sign_on_across_portals_in_chromium() {
    support::browser::require_browser();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let portals = Portals::start(&issuer);
    let deployment = Deployment::start(
        &clients_config(&portals.file, &portals.atip),
        false,
        port,
        &[("GUICHET_PUBLIC_URL", &issuer)],
    );
    let member = users::insert(
        &mut deployment.store.connection().expect("conn"),
        &imported_member(),
        idp::store::now(),
    )
    .expect("imported member");
    run_portal_journey(
        &[
            ("FILE_URL", portals.file.clone()),
            ("ATIP_URL", portals.atip.clone()),
            ("IDP_URL", issuer.clone()),
            (
                "OUTBOX_DIR",
                deployment
                    .dir
                    .path()
                    .join("data/outbox")
                    .display()
                    .to_string(),
            ),
        ],
        "browser-portals",
    );

    // After the whole journey, no secret appears in any audit row or log line: the password,
    // the emailed codes, the authenticator key, the client secrets, the master key.
    let mut conn = deployment.store.connection().expect("conn");
    let mut secrets = vec![
        NEW_PASSWORD.to_string(),
        FILE_SECRET.to_string(),
        ATIP_SECRET.to_string(),
        deployment.master_key.to_base64(),
    ];
    let outbox = mail_worker::Outbox::open(deployment.dir.path().join("data/outbox"))
        .expect("outbox")
        .messages()
        .expect("mails");
    assert!(!outbox.is_empty());
    secrets.extend(outbox.iter().map(|m| m.parameters["code"].clone()));
    let user = users::find_by_id(&mut conn, &member.id)
        .expect("query")
        .expect("member");
    let key = idp::authn::totp::open_secret(
        &deployment.master_key,
        &user.id,
        user.totp_secret_enc
            .as_deref()
            .expect("authenticator enrolled"),
    )
    .expect("open the key");
    let authenticator = idp::authn::totp::Authenticator::new("CPAQCPROD", MEMBER, key);
    secrets.push(authenticator.enrolment().grouped_key.replace(' ', ""));
    let rows = idp::store::audit::recent(&mut conn, 10_000).expect("audit rows");
    assert!(
        rows.iter().any(|r| r.event_type == "signin.sso"),
        "the journey was audited"
    );
    let loaded = rows
        .iter()
        .find(|r| r.event_type == "config.loaded")
        .expect("the start is audited");
    assert!(
        loaded.detail.contains("\"file-portal\""),
        "{}",
        loaded.detail
    );
    assert!(
        loaded.detail.contains("settings_sha256"),
        "{}",
        loaded.detail
    );
    let audit_text: String = rows.iter().map(|r| format!("{r:?}\n")).collect();
    drop(conn);
    let support::server::Deployment { server, dir, .. } = deployment;
    let (_, logs) = server.terminate();
    assert!(logs.contains("request"), "the server logged requests");
    for secret in &secrets {
        assert!(
            !audit_text.contains(secret.as_str()),
            "a secret is in the audit log"
        );
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
    }
    // No token either: every JWT (ID, access, logout tokens) starts with `eyJ`.
    assert!(!audit_text.contains("eyJ"), "a JWT is in the audit log");
    assert!(!logs.contains("eyJ"), "a JWT is in the logs");
    drop(dir);
}

// ---------------------------------------------------------------------------------------------
// Scale-out: two instances behind nginx
// ---------------------------------------------------------------------------------------------

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is missing: run scripts/test.sh, which installs Debian's nginx")
}

/// nginx in front of `upstreams`, round-robin, naming the instance that answered in a header.
fn nginx(dir: &Path, port: u16, upstreams: &[u16]) -> Process {
    let servers: String = upstreams
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p};\n"))
        .collect();
    let d = dir.display();
    let conf = format!(
        r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream guichet {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://guichet;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      add_header X-Guichet-Instance $upstream_addr always;
    }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    wait_for_port(port, "nginx");
    Process(child)
}

#[test]
fn two_instances_behind_nginx_serve_the_whole_journey() {
    support::browser::require_browser();
    let root = support::browser::repo_root();
    let work = tempfile::tempdir().expect("tempdir");
    // One PostgreSQL database and one Redis (private to this test) for both instances.
    let pg = support::EmptyPostgres::create();
    let redis_port = free_port();
    let _redis = Process(
        Command::new("redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is missing: run scripts/test.sh, which installs it"),
    );
    wait_for_port(redis_port, "redis-server");
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    // A real SMTP server storing messages in a Maildir, and the mail worker.
    let smtp_port = free_port();
    let maildir = work.path().join("maildir");
    let _smtp = Process(
        Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{smtp_port}"))
            .args(["-c", "smtp_sink.FastMaildir"])
            .arg(&maildir)
            .env("PYTHONPATH", root.join("tests/smtp"))
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 is missing: run scripts/test.sh"),
    );
    wait_for_port(
        smtp_port,
        "aiosmtpd (run scripts/test.sh, which installs it)",
    );
    let queue_key = mail_queue::QueueKey::generate_base64();
    let worker_binary = Path::new(support::server::IDP).with_file_name("mail-worker");
    assert!(
        worker_binary.exists(),
        "{} is missing: build the workspace (scripts/test.sh does)",
        worker_binary.display()
    );
    let _worker = Process(
        Command::new(worker_binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GUICHET_WORKER_REDIS_URL", &redis_url)
            .env("GUICHET_WORKER_QUEUE_KEY", &queue_key)
            .env("GUICHET_WORKER_BLOCK_MS", "200")
            .env("GUICHET_WORKER_SMTP__PORT", smtp_port.to_string())
            .env(
                "GUICHET_WORKER_SMTP__FROM",
                "Guichet <no-reply@example.org>",
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("mail worker"),
    );

    // Two instances, same configuration and secrets, each with its own working directory.
    let lb_port = free_port();
    let public = format!("http://127.0.0.1:{lb_port}");
    let portals = Portals::start(&public);
    let master_key = idp::crypto::MasterKey::generate().to_base64();
    let config = clients_config(&portals.file, &portals.atip);
    let env: Vec<(&str, &str)> = vec![
        ("GUICHET_CONFIG", "idp.toml"),
        ("GUICHET_PUBLIC_URL", &public),
        ("GUICHET_DATABASE_URL", &pg.url),
        ("GUICHET_REDIS_URL", &redis_url),
        ("GUICHET_MAIL__QUEUE_KEY", &queue_key),
        ("GUICHET_MASTER_KEY", &master_key),
        ("GUICHET_SIGN_IN__ARGON2_M_COST_KIB", "1024"),
        ("GUICHET_SIGN_IN__ARGON2_T_COST", "1"),
    ];
    let mut instances = Vec::new();
    let mut ports = Vec::new();
    for n in 0..2 {
        let dir = work.path().join(format!("instance-{n}"));
        std::fs::create_dir_all(&dir).expect("instance dir");
        std::fs::write(dir.join("idp.toml"), &config).expect("config");
        let port = free_port();
        // One after the other: the first applies the migrations.
        instances.push(Server::start_on(&dir, port, &env));
        ports.push(port);
    }
    let lb_dir = work.path().join("nginx");
    std::fs::create_dir_all(&lb_dir).expect("nginx dir");
    let _nginx = nginx(&lb_dir, lb_port, &ports);

    let store = support::open_store(idp::store::DatabaseTarget::Postgres(pg.url.clone()));
    users::insert(
        &mut store.connection().expect("conn"),
        &imported_member(),
        idp::store::now(),
    )
    .expect("imported member");

    let out = run_portal_journey(
        &[
            ("FILE_URL", portals.file.clone()),
            ("ATIP_URL", portals.atip.clone()),
            ("IDP_URL", public.clone()),
            ("MAILDIR", maildir.display().to_string()),
            ("INSTANCE_HEADER", "X-Guichet-Instance".into()),
        ],
        "browser-scale-out",
    );
    for port in &ports {
        assert!(
            out.contains(&format!("127.0.0.1:{port}")),
            "instance {port} answered nothing: {out}"
        );
    }
    drop(instances);
}
