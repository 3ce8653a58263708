//! `POST /token` through the real binary, on SQLite and on PostgreSQL: the client_credentials
//! grant, client authentication, RFC 6749 error objects, and the audit row of each issuance.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use base64::Engine;
use idp::store::audit;
use serde_json::Value;
use support::free_port;
use support::server::{client, Deployment};

const SECRET: &str = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ";

const CLIENTS: &str = r#"
[[clients]]
id = "batch-es"
name = "Batch (ES256)"
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
grants = ["client_credentials"]
scopes = ["openid", "members.read", "members.write"]
id_token_alg = "ES256"

[[clients]]
id = "batch-rs"
name = "Batch (RS256)"
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
grants = ["client_credentials"]
scopes = ["members.read"]

[[clients]]
id = "batch-ed"
name = "Batch (EdDSA)"
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
grants = ["client_credentials"]
scopes = ["members.read"]
id_token_alg = "EdDSA"

[[clients]]
id = "file-portal"
name = "Portail des membres"
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
redirect_uris = ["http://localhost:9000/callback"]
"#;

/// A server with the test clients, on SQLite or PostgreSQL.
type Fixture = Deployment;

fn start(postgres: bool) -> Fixture {
    let (_, x) = client_key();
    let keyed = format!(
        "{CLIENTS}\n[[clients]]\nid = \"keyed\"\nname = \"Batch (private_key_jwt)\"\n\
         grants = [\"client_credentials\"]\nscopes = [\"members.read\"]\nid_token_alg = \"ES256\"\n\
         jwks = {{ keys = [ {{ kty = \"OKP\", crv = \"Ed25519\", kid = \"k1\", x = \"{x}\" }} ] }}\n"
    );
    Deployment::start(&keyed, postgres, free_port(), &[])
}

/// The Ed25519 key of the `keyed` client: PKCS#8 document and public `x`, made once per run.
fn client_key() -> &'static (Vec<u8>, String) {
    static KEY: std::sync::OnceLock<(Vec<u8>, String)> = std::sync::OnceLock::new();
    KEY.get_or_init(new_ed25519_key)
}

fn new_ed25519_key() -> (Vec<u8>, String) {
    use aws_lc_rs::signature::KeyPair;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    (pkcs8.as_ref().to_vec(), x)
}

/// A client assertion (RFC 7523) for `keyed`, signed with `pkcs8`.
fn assertion(pkcs8: &[u8], aud: &str, lifetime_secs: i64, jti: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(
        &header,
        &serde_json::json!({
            "iss": "keyed", "sub": "keyed", "aud": aud, "jti": jti,
            "iat": now, "exp": now + lifetime_secs,
        }),
        &jsonwebtoken::EncodingKey::from_ed_der(pkcs8),
    )
    .expect("sign assertion")
}

fn assertion_body(assertion: &str) -> String {
    format!(
        "grant_type=client_credentials&client_assertion_type=\
         urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    )
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn post(
    f: &Fixture,
    authorization: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client()
        .post(f.server.url("/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    let response = request.send().expect("POST /token");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().expect("JSON body"))
}

fn verify(f: &Fixture, token: &str) -> (jsonwebtoken::Header, Value) {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let jwks: jsonwebtoken::jwk::JwkSet = client()
        .get(f.server.url("/jwks"))
        .send()
        .expect("GET /jwks")
        .json()
        .expect("jwks");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["http://localhost:8080"]);
    validation.set_issuer(&["http://localhost:8080"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("valid signature and claims");
    (data.header, data.claims)
}

on_both_backends!(
    start;
    client_credentials_issues_a_verifiable_access_token,
    every_signing_algorithm_and_client_secret_post,
        authentication_failures_are_invalid_client,
    a_secret_changed_in_the_database_is_good_at_once,
        request_errors_are_rfc6749_objects,
    private_key_jwt_assertions_are_checked_and_used_once,
);

fn private_key_jwt_assertions_are_checked_and_used_once(f: &Fixture) {
    let (pkcs8, _) = client_key();
    let token_url = "http://localhost:8080/token";
    let good = assertion(pkcs8, token_url, 60, "jti-1");
    let (status, _, body) = post(f, None, &assertion_body(&good));
    assert_eq!(status, 200, "{body}");
    let (header, claims) = verify(f, body["access_token"].as_str().expect("token"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(claims["client_id"], "keyed");
    assert_eq!(claims["scope"], "members.read");

    // The issuer is an accepted audience too; client_id may name the client as well.
    let by_issuer = assertion(pkcs8, "http://localhost:8080", 60, "jti-2");
    let (status, _, body) = post(
        f,
        None,
        &format!("{}&client_id=keyed", assertion_body(&by_issuer)),
    );
    assert_eq!(status, 200, "{body}");

    let (other_key, _) = new_ed25519_key();
    let refused = [
        ("replayed", good.clone()),
        (
            "wrong audience",
            assertion(pkcs8, "https://elsewhere.example", 60, "jti-3"),
        ),
        ("expired", assertion(pkcs8, token_url, -120, "jti-4")),
        (
            "too long-lived",
            assertion(pkcs8, token_url, 3_600, "jti-5"),
        ),
        ("another key", assertion(&other_key, token_url, 60, "jti-6")),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (why, bad) in refused {
        let (status, headers, body) = post(f, None, &assertion_body(&bad));
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {body}"
        );
        assert!(headers.contains_key("www-authenticate"), "{why}");
    }
    // A keyed client has no secret to present.
    let (status, _, body) = post(
        f,
        Some(&basic("keyed", SECRET)),
        "grant_type=client_credentials",
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Two methods at once, a mismatched client_id, an unknown assertion type.
    let fresh = assertion(pkcs8, token_url, 60, "jti-7");
    let (status, _, body) = post(f, Some(&basic("keyed", SECRET)), &assertion_body(&fresh));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _, body) = post(
        f,
        None,
        &format!("{}&client_id=batch-es", assertion_body(&fresh)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _, body) = post(
        f,
        None,
        &format!("grant_type=client_credentials&client_assertion_type=urn%3Aother&client_assertion={fresh}"),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

fn client_credentials_issues_a_verifiable_access_token(f: &Fixture) {
    let (status, headers, body) = post(
        f,
        Some(&basic("batch-es", SECRET)),
        "grant_type=client_credentials",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(
        body["scope"], "members.read members.write",
        "default: every non-user scope"
    );
    let token = body["access_token"].as_str().expect("token");

    let (header, claims) = verify(f, token);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 type");
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::ES256,
        "the client's algorithm"
    );
    assert_eq!(claims["sub"], "batch-es");
    assert_eq!(claims["client_id"], "batch-es");
    assert_eq!(claims["iss"], "http://localhost:8080");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        600
    );
    let jti = claims["jti"].as_str().expect("jti").to_string();

    let (_, _, narrower) = post(
        f,
        Some(&basic("batch-es", SECRET)),
        "grant_type=client_credentials&scope=members.read",
    );
    assert_eq!(narrower["scope"], "members.read");

    // The issuance is audited by jti; the token itself is never stored.
    let events = f
        .store
        .connection()
        .map(|mut c| audit::recent(&mut c, 10).expect("audit"))
        .expect("connection");
    let issued: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "token.issued")
        .collect();
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().any(|e| e.detail.contains(&jti)));
    for e in &events {
        assert!(!e.detail.contains(token), "token stored in the audit log");
        assert!(!e.detail.contains(SECRET));
    }
    assert_eq!(issued[0].client_id.as_deref(), Some("batch-es"));
    assert_eq!(issued[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(issued[0].request_id.is_some());
}

fn every_signing_algorithm_and_client_secret_post(f: &Fixture) {
    for (id, alg) in [
        ("batch-rs", jsonwebtoken::Algorithm::RS256),
        ("batch-ed", jsonwebtoken::Algorithm::EdDSA),
    ] {
        let body = format!("grant_type=client_credentials&client_id={id}&client_secret={SECRET}");
        let (status, _, json) = post(f, None, &body);
        assert_eq!(status, 200, "{id}: {json}");
        let (header, claims) = verify(f, json["access_token"].as_str().expect("token"));
        assert_eq!(header.alg, alg);
        assert_eq!(claims["scope"], "members.read");
    }
}

fn authentication_failures_are_invalid_client(f: &Fixture) {
    let cases = [
        (
            Some(basic("batch-es", "wrong-secret")),
            "grant_type=client_credentials".to_string(),
        ),
        (
            Some(basic("nobody", SECRET)),
            "grant_type=client_credentials".to_string(),
        ),
        (
            None,
            format!("grant_type=client_credentials&client_id=batch-es&client_secret={SECRET}x"),
        ),
        (
            None,
            "grant_type=client_credentials&client_id=batch-es".to_string(),
        ),
        (None, "grant_type=client_credentials".to_string()),
        (
            Some("Basic not-base64!".to_string()),
            "grant_type=client_credentials".to_string(),
        ),
    ];
    let mut bodies = Vec::new();
    for (authorization, body) in cases {
        let (status, headers, json) = post(f, authorization.as_deref(), &body);
        assert_eq!(status, 401, "{body}: {json}");
        assert_eq!(json["error"], "invalid_client");
        assert!(headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic"));
        assert_eq!(headers["cache-control"], "no-store");
        bodies.push(json);
    }
    // Unknown client and wrong secret are indistinguishable.
    assert_eq!(bodies[0], bodies[1]);
}

/// The server keeps recently read clients in memory; a secret rotated by another instance (here,
/// written to the database directly) is still accepted at once, the memory being checked
/// against the database before a refusal. The client is disabled within the cache's 5 s.
fn a_secret_changed_in_the_database_is_good_at_once(f: &Fixture) {
    let grant = "grant_type=client_credentials";
    let (status, _, json) = post(f, Some(&basic("batch-ed", SECRET)), grant);
    assert_eq!(status, 200, "{json}");
    let new_secret = "bmV3LXNlY3JldC1mb3ItdGVzdHMtb25seS0xMjM0NTY";
    let hasher = idp::crypto::KeyedHasher::new(&f.master_key);
    let hash = hasher.hash(idp::oidc::clients::SECRET_PURPOSE, new_secret.as_bytes());
    let mut conn = f.store.connection().expect("conn");
    assert!(
        idp::store::clients::set_secret_hash(&mut conn, "batch-ed", &hash, idp::store::now())
            .expect("update")
    );
    let (status, _, json) = post(f, Some(&basic("batch-ed", new_secret)), grant);
    assert_eq!(status, 200, "the new secret at once: {json}");
    let (status, _, json) = post(f, Some(&basic("batch-ed", SECRET)), grant);
    assert_eq!(
        status, 401,
        "the old secret, once the client was read again: {json}"
    );
    assert!(
        idp::store::clients::set_enabled(&mut conn, "batch-ed", false, idp::store::now())
            .expect("update")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _, json) = post(f, Some(&basic("batch-ed", new_secret)), grant);
        if status == 401 {
            assert_eq!(json["error"], "invalid_client");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a disabled client is refused within the cache's 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

fn request_errors_are_rfc6749_objects(f: &Fixture) {
    let auth = basic("batch-es", SECRET);
    let cases = [
        ("", 400, "invalid_request"),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            400,
            "invalid_request",
        ),
        (
            "grant_type=password&username=a&password=b",
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=client_credentials&scope=openid",
            400,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials&scope=admin",
            400,
            "invalid_scope",
        ),
    ];
    for (body, status, error) in cases {
        let (got, _, json) = post(f, Some(&auth), body);
        assert_eq!(
            (got, json["error"].as_str()),
            (status, Some(error)),
            "{body}: {json}"
        );
        assert!(json["error_description"].is_string());
    }
    // A client not allowed the grant.
    let (status, _, json) = post(
        f,
        Some(&basic("file-portal", SECRET)),
        "grant_type=client_credentials",
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{json}"
    );

    // Wrong content type, wrong method, garbage: clear errors, never a 500.
    let response = client()
        .post(f.server.url("/token"))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .expect("POST");
    assert_eq!(response.status(), 400);
    let response = client().get(f.server.url("/token")).send().expect("GET");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let garbage: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 256) as u8).collect();
    let response = client()
        .post(f.server.url("/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(garbage)
        .send()
        .expect("POST");
    assert!(response.status().is_client_error(), "{}", response.status());
    let huge = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(100_000)
    );
    let response = client()
        .post(f.server.url("/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", &auth)
        .body(huge)
        .send()
        .expect("POST");
    assert!(response.status().is_client_error(), "{}", response.status());
}
