//! `cargo run -p demo` starts Guichet on embedded defaults and becomes ready.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_starts_on_embedded_defaults_and_prints_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    };
    let (port, file_port, atip_port) = (free_port(), free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUICHET_")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .current_dir(dir.path())
        .env("GUICHET_BIND", format!("127.0.0.1:{port}"))
        .env("GUICHET_PUBLIC_URL", format!("http://localhost:{port}"))
        .env("DEMO_FILE_PORTAL_PORT", file_port.to_string())
        .env("DEMO_ATIP_PORT", atip_port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let started = Instant::now();
    let body: serde_json::Value = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
        {
            if r.status() == 200 {
                break r.json().expect("json");
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "demo not ready in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "ok");
    assert!(
        dir.path().join("data/guichet.db").is_file(),
        "SQLite under ./data"
    );

    // Both portals answer, and each starts its sign-in at this Guichet with PKCE.
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let home = client
        .get(format!("http://127.0.0.1:{file_port}/"))
        .send()
        .expect("file portal")
        .text()
        .expect("page");
    assert!(home.contains("id=\"access-file\""), "{home}");
    let home = client
        .get(format!("http://127.0.0.1:{atip_port}/"))
        .send()
        .expect("ATIP portal")
        .text()
        .expect("page");
    assert!(home.contains("id=\"guest\""), "{home}");
    for (portal, client_id) in [(file_port, "file-portal"), (atip_port, "atip-portal")] {
        let r = no_redirects
            .get(format!("http://127.0.0.1:{portal}/login"))
            .send()
            .expect("login");
        let to = r.headers()["location"].to_str().expect("ascii").to_string();
        assert!(
            to.starts_with(&format!("http://localhost:{port}/authorize?")),
            "{to}"
        );
        assert!(to.contains(&format!("client_id={client_id}")), "{to}");
        assert!(to.contains("code_challenge_method=S256"), "{to}");
        // Guichet knows the portal: the request leads to its sign-in page.
        let r = no_redirects.get(&to).send().expect("authorize");
        assert_eq!(r.headers()["location"], "/login", "{client_id}");
    }
    // Its pages say how to reach the example helpdesk.
    let page = client
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .expect("sign-in page")
        .text()
        .expect("page");
    assert!(
        page.contains("<a href=\"tel:5145550100\">514 555-0100</a>")
            && page.contains("mailto:soutien@example.org"),
        "{page}"
    );
    // The demo member exists and must do the first login.
    let store = idp::store::Store::open(
        idp::store::DatabaseTarget::Sqlite(dir.path().join("data/guichet.db")),
        &idp::store::PoolOptions {
            max_size: 1,
            connect_timeout: Duration::from_secs(5),
            sqlite_busy_timeout_ms: 5000,
        },
    )
    .expect("store");
    let member =
        idp::store::users::find_by_email(&mut store.connection().expect("conn"), demo::DEMO_MEMBER)
            .expect("query")
            .expect("demo member seeded");
    assert!(member.must_reset && member.password_hash.is_none());

    child.kill().expect("kill");
    child.wait().expect("wait");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    for url in [
        format!("http://localhost:{port}/"),
        format!("http://localhost:{port}/account"),
        format!("http://localhost:{file_port}/"),
        format!("http://localhost:{atip_port}/"),
        format!("http://localhost:{port}/dev/outbox"),
    ] {
        assert!(out.contains(&url), "{url} not printed:\n{out}");
    }
    assert!(out.contains(demo::DEMO_MEMBER), "{out}");
}
