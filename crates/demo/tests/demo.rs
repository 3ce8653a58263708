//! `cargo run -p demo` starts Guichet on embedded defaults and becomes ready.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_starts_on_embedded_defaults_and_prints_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUICHET_")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .current_dir(dir.path())
        .env("GUICHET_BIND", format!("127.0.0.1:{port}"))
        .env("GUICHET_PUBLIC_URL", format!("http://localhost:{port}"))
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

    child.kill().expect("kill");
    child.wait().expect("wait");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(
        out.contains(&format!("http://localhost:{port}/health/ready")),
        "{out}"
    );
}
