//! The `portal` binary refuses a bad configuration before listening, naming what is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

fn portal(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUICHET_")) {
        cmd.env_remove(key);
    }
    let out = cmd
        .args(["--bind", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .output()
        .expect("run portal");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_settings_are_refused_with_the_key_named() {
    let good = [
        ("GUICHET_PORTAL_KIND", "atip"),
        ("GUICHET_PORTAL_PUBLIC_URL", "http://127.0.0.1:8082"),
        ("GUICHET_PORTAL_ISSUER", "http://127.0.0.1:8080"),
        (
            "GUICHET_PORTAL_CLIENT_SECRET",
            "YXRpcC1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ",
        ),
    ];
    let with = |key: &str, value: &str| {
        let mut env: Vec<(&str, &str)> = good.iter().copied().filter(|(k, _)| *k != key).collect();
        env.push((key, value));
        portal(&env.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>())
    };
    let (code, err) = with("GUICHET_PORTAL_KIND", "intranet");
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown portal `intranet`"), "{err}");
    let (code, err) = with("GUICHET_PORTAL_CLIENT_SECRET", "short");
    assert_eq!(code, Some(2));
    assert!(err.contains("client_secret"), "{err}");
    assert!(!err.contains("short"), "the secret is not echoed: {err}");
    let (code, err) = with("GUICHET_PORTAL_ISSUER", "http://idp.example.org");
    assert_eq!(code, Some(2));
    assert!(err.contains("issuer") && err.contains("https"), "{err}");
    let (code, err) = with("GUICHET_PORTAL_PUBLIC_URL", "not a url");
    assert_eq!(code, Some(2));
    assert!(err.contains("public_url"), "{err}");
}
