//! The authorization code flow through the real binary, on SQLite and PostgreSQL: authorize,
//! sign-in (password and emailed code), code exchange with PKCE, ID token checked against the JWKS,
//! single sign-on, prompts, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use base64::Engine;
use idp::store::users::{self, NewUser};
use idp::store::{audit, Store};
use reqwest::blocking::Client as Http;
use serde_json::Value;
use support::server::{cheap_password_hash, Deployment, Server};
use support::{free_port, EmptyPostgres};

const SECRET: &str = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ";
const PASSWORD: &str = "Correct-Horse-Battery-9";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const ISSUER: &str = "http://localhost:8080";
const CALLBACK: &str = "http://localhost:9000/callback";

const CLIENTS: &str = r#"
[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
redirect_uris = ["http://localhost:9000/callback"]
post_logout_redirect_uris = ["http://localhost:9000/bye"]
backchannel_logout_uri = "http://127.0.0.1:BCL_PORT/bcl/file-portal"

[[clients]]
id = "atip"
name = "Portail AIPRP"
first_party = true
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
redirect_uris = ["http://localhost:9002/callback"]
backchannel_logout_uri = "http://127.0.0.1:BCL_PORT/bcl/atip"

[[clients]]
id = "partner"
name = "Portail partenaire"
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
redirect_uris = ["http://localhost:9003/callback"]

[[clients]]
id = "spa"
name = "Public app"
first_party = true
kind = "public"
redirect_uris = ["http://localhost:9001/cb"]
scopes = ["openid"]
id_token_alg = "EdDSA"
"#;

/// A loopback HTTP receiver for back-channel logout tokens: (path, body) of each POST.
struct Backchannel {
    port: u16,
    received: std::sync::mpsc::Receiver<(String, String)>,
}

fn backchannel() -> Backchannel {
    backchannel_on(0)
}

/// A portal's back-channel logout receiver on `port` (0: any free port).
fn backchannel_on(port: u16) -> Backchannel {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().expect("length");
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if tx
                .send((path, String::from_utf8_lossy(&body).into_owned()))
                .is_err()
            {
                break;
            }
        }
    });
    Backchannel { port, received }
}

struct Fixture {
    backchannel: Backchannel,
    server: Server,
    store: Store,
    user_id: String,
    _dir: tempfile::TempDir,
    _pg: Option<EmptyPostgres>,
}

fn start(postgres: bool) -> Fixture {
    start_with(postgres, &[])
}

fn start_with(postgres: bool, env: &[(&str, &str)]) -> Fixture {
    let backchannel = backchannel();
    let config = CLIENTS.replace("BCL_PORT", &backchannel.port.to_string());
    let Deployment {
        server,
        store,
        dir,
        postgres,
        ..
    } = Deployment::start(&config, postgres, free_port(), env);
    let user = users::insert(
        &mut store.connection().expect("conn"),
        &NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: "Marie.Tremblay@example.org".into(),
            member_code: Some("R12345".into()),
            given_name: "Marie".into(),
            family_name: "Tremblay".into(),
            locale: "fr-CA".into(),
            password_hash: Some(cheap_password_hash(PASSWORD)),
            must_reset: false,
        },
        idp::store::now(),
    )
    .expect("user");
    users::set_mfa(
        &mut store.connection().expect("conn"),
        &user.id,
        &users::MfaSetting::Email,
        idp::store::now(),
    )
    .expect("second factor");
    Fixture {
        backchannel,
        server,
        store,
        user_id: user.id,
        _dir: dir,
        _pg: postgres,
    }
}

fn http() -> Http {
    Http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

fn authorize_url(f: &Fixture, extra: &str) -> String {
    f.server.url(&format!(
        "/authorize?client_id=file-portal&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback\
         &response_type=code&scope=openid+email+profile&state=st-1&nonce=no-1\
         &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    ))
}

fn location(response: &reqwest::blocking::Response) -> String {
    response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string()
}

/// The `name=value` of a Set-Cookie header named `name`.
fn cookie(response: &reqwest::blocking::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[start..start + html[start..].find('"').expect("end")].to_string()
}

/// Runs authorize + sign-in; returns the redirect to the portal and the session cookie.
fn sign_in(f: &Fixture, http: &Http) -> (String, String) {
    sign_in_as(f, http, " marie.tremblay@EXAMPLE.org ")
}

fn sign_in_as(f: &Fixture, http: &Http, email: &str) -> (String, String) {
    let r = http.get(authorize_url(f, "")).send().expect("authorize");
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let tx = cookie(&r, "guichet_tx").expect("transaction cookie");
    let browser = support::journey::Browser {
        http,
        base: &f.server.base,
        tx: tx.split(';').next().expect("pair").to_string(),
    };
    let r = support::journey::password_and_email_code(&browser, f._dir.path(), email, PASSWORD);
    assert_eq!(r.status(), 303, "signed in");
    let session = cookie(&r, "guichet_session").expect("session cookie");
    (
        location(&r),
        session.split(';').next().expect("pair").to_string(),
    )
}

fn exchange(f: &Fixture, http: &Http, code: &str, verifier: &str) -> (u16, Value) {
    let r = http
        .post(f.server.url("/token"))
        .header(
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("file-portal:{SECRET}"))
            ),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .send()
        .expect("token");
    (r.status().as_u16(), r.json().expect("json"))
}

fn verify_id_token(f: &Fixture, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(f.server.url("/jwks"))
        .send()
        .expect("jwks")
        .json()
        .expect("json");
    let key = jsonwebtoken::DecodingKey::from_jwk(
        jwks.find(header.kid.as_deref().expect("kid")).expect("kid"),
    )
    .expect("key");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[audience]);
    v.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("valid ID token")
        .claims
}

on_both_backends!(
    start;
    code_flow_with_pkce_gives_a_valid_id_token,
    single_sign_on_and_prompts,
    id_token_hint_must_name_the_signed_in_person,
    refusals_of_the_sign_in_page,
    public_client_needs_pkce_and_no_secret,
    unregistered_redirect_uris_never_redirect,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    a_disabled_persons_refresh_token_is_refused_until_enabled,
    userinfo_answers_bearer_tokens_by_scope,
    revocation_and_introspection,
        logout_ends_the_session_everywhere,
        a_notice_left_in_the_queue_is_delivered,
    a_password_reset_ends_every_session_and_its_tokens,
    logout_without_a_hint_asks_first,
    consent_is_asked_once_for_a_third_party_portal,
    form_post_answers_with_an_auto_submitted_form,
);

fn code_flow_with_pkce_gives_a_valid_id_token(f: &Fixture) {
    let http = http();
    let discovery: Value = http
        .get(f.server.url("/.well-known/openid-configuration"))
        .send()
        .expect("discovery")
        .json()
        .expect("json");
    assert_eq!(discovery["issuer"], ISSUER);
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    let (redirect, session) = sign_in(f, &http);
    assert!(redirect.starts_with(CALLBACK), "{redirect}");
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("st-1"));
    assert_eq!(query_param(&redirect, "iss").as_deref(), Some(ISSUER));
    assert!(session.starts_with("guichet_session="));
    let code = query_param(&redirect, "code").expect("code");

    let (status, body) = exchange(f, &http, &code, VERIFIER);
    assert_eq!(status, 200, "{body}");
    let claims = verify_id_token(
        f,
        body["id_token"].as_str().expect("id_token"),
        "file-portal",
    );
    assert_eq!(claims["sub"], f.user_id.as_str());
    assert_eq!(claims["nonce"], "no-1");
    assert_eq!(claims["email"], "Marie.Tremblay@example.org");
    assert_eq!(claims["member_code"], "R12345");
    assert_eq!(claims["given_name"], "Marie");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "mfa");
    assert!(claims["sid"].is_string() && claims["auth_time"].is_i64());
    let at_hash = idp::oidc::id_token::at_hash(
        idp::oidc::keys::SigningAlg::Rs256,
        body["access_token"].as_str().expect("access token"),
    );
    assert_eq!(claims["at_hash"], at_hash.as_str());

    // A replayed code is refused and recorded.
    let (status, body) = exchange(f, &http, &code, VERIFIER);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let events = audit::recent(&mut f.store.connection().expect("conn"), 20).expect("audit");
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    for expected in ["signin.succeeded", "token.issued", "token.code_replayed"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    for e in &events {
        assert!(
            !e.detail.contains(&code) && !e.detail.contains(PASSWORD),
            "secret in audit: {e:?}"
        );
    }
}

fn single_sign_on_and_prompts(f: &Fixture) {
    let http = http();
    let (_, session) = sign_in(f, &http);
    // With a session: straight back with a code, no sign-in page.
    let r = http
        .get(authorize_url(f, ""))
        .header("Cookie", &session)
        .send()
        .expect("sso");
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert!(back.starts_with(CALLBACK), "{back}");
    let code = query_param(&back, "code").expect("code");
    // Wrong PKCE verifier.
    let (status, body) = exchange(
        f,
        &http,
        &code,
        "a-wrong-verifier-that-is-long-enough-for-pkce-0123",
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // prompt=login forces the sign-in page even with a session.
    let r = http
        .get(authorize_url(f, "&prompt=login"))
        .header("Cookie", &session)
        .send()
        .expect("login");
    assert_eq!(location(&r), "/login");
    // max_age=0: any session is too old for this request.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = http
        .get(authorize_url(f, "&max_age=0"))
        .header("Cookie", &session)
        .send()
        .expect("max_age");
    assert_eq!(location(&r), "/login");
    let r = http
        .get(authorize_url(f, "&max_age=3600"))
        .header("Cookie", &session)
        .send()
        .expect("max_age");
    assert!(
        location(&r).starts_with(CALLBACK),
        "a recent session satisfies max_age=3600"
    );
    // prompt=none without a session: login_required, with state.
    let r = http
        .get(authorize_url(f, "&prompt=none"))
        .send()
        .expect("none");
    let back = location(&r);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    // prompt=none with a session: a code.
    let r = http
        .get(authorize_url(f, "&prompt=none"))
        .header("Cookie", &session)
        .send()
        .expect("none");
    assert!(query_param(&location(&r), "code").is_some());
}

fn refusals_of_the_sign_in_page(f: &Fixture) {
    let http = http();
    let r = http.get(authorize_url(f, "")).send().expect("authorize");
    let tx = cookie(&r, "guichet_tx").expect("tx");
    assert!(
        tx.contains("HttpOnly") && tx.contains("SameSite=Lax"),
        "{tx}"
    );
    let tx = tx.split(';').next().expect("pair").to_string();
    let page = http
        .get(f.server.url("/login"))
        .header("Cookie", &tx)
        .send()
        .expect("form")
        .text()
        .expect("html");
    for needle in [
        "autocomplete=\"username\"",
        "autocomplete=\"current-password\"",
        "<label for=\"email\"",
        "<label for=\"password\"",
    ] {
        assert!(page.contains(needle), "{needle} missing");
    }
    let csrf = csrf_of(&page);

    // Wrong password and unknown email: the same answer.
    let wrong = http
        .post(f.server.url("/login"))
        .header("Cookie", &tx)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "marie.tremblay@example.org"),
            ("password", "nope"),
        ])
        .send()
        .expect("post");
    assert_eq!(wrong.status(), 200);
    let wrong = wrong.text().expect("html");
    let unknown = http
        .post(f.server.url("/login"))
        .header("Cookie", &tx)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "nobody@example.org"),
            ("password", "nope"),
        ])
        .send()
        .expect("post")
        .text()
        .expect("html");
    assert!(wrong.contains("Courriel ou mot de passe incorrect"));
    assert_eq!(
        wrong.replace("marie.tremblay@example.org", "E"),
        unknown.replace("nobody@example.org", "E")
    );
    assert!(!wrong.contains("nope"), "a password is never shown");

    // A forged CSRF token, a missing transaction: refused, nothing issued.
    let forged = http
        .post(f.server.url("/login"))
        .header("Cookie", &tx)
        .form(&[
            ("csrf", "Zm9yZ2Vk"),
            ("email", "marie.tremblay@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .expect("post");
    assert_eq!(forged.status(), 400);
    assert!(cookie(&forged, "guichet_session").is_none());
    let r = http.get(f.server.url("/login")).send().expect("no tx");
    assert_eq!(r.status(), 400);

    // The right password moves on to the second factor: no session yet.
    let ok = http
        .post(f.server.url("/login"))
        .header("Cookie", &tx)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "marie.tremblay@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .expect("post");
    assert_eq!(ok.status(), 303);
    assert!(location(&ok).starts_with("/login"));
    assert!(cookie(&ok, "guichet_session").is_none());
    // The password form again, from the back button: the journey shows where it is.
    let again = http
        .post(f.server.url("/login"))
        .header("Cookie", &tx)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "marie.tremblay@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .expect("post");
    assert_eq!(again.status(), 303);
    assert!(cookie(&again, "guichet_session").is_none());
    // The code finishes the sign-in and spends the transaction.
    let code = support::journey::latest_code(f._dir.path(), "marie.tremblay@example.org");
    let done = http
        .post(f.server.url("/login/second-factor"))
        .header("Cookie", &tx)
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .expect("post");
    assert_eq!(done.status(), 303);
    assert!(location(&done).starts_with(CALLBACK));
    assert!(cookie(&done, "guichet_session").is_some());
    let spent = http
        .post(f.server.url("/login/second-factor"))
        .header("Cookie", &tx)
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .expect("post");
    assert_eq!(spent.status(), 400);
}

fn public_client_needs_pkce_and_no_secret(f: &Fixture) {
    let http = http();
    let (_, session) = sign_in(f, &http);
    let base = "/authorize?client_id=spa&redirect_uri=http%3A%2F%2Flocalhost%3A9001%2Fcb&response_type=code&scope=openid&state=s2";
    let r = http
        .get(f.server.url(base))
        .header("Cookie", &session)
        .send()
        .expect("no pkce");
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );
    let r = http
        .get(f.server.url(&format!(
            "{base}&code_challenge={CHALLENGE}&code_challenge_method=plain"
        )))
        .header("Cookie", &session)
        .send()
        .expect("plain");
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );
    let r = http
        .get(f.server.url(&format!(
            "{base}&code_challenge={CHALLENGE}&code_challenge_method=S256"
        )))
        .header("Cookie", &session)
        .send()
        .expect("pkce");
    let code = query_param(&location(&r), "code").expect("code");
    let r = http
        .post(f.server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:9001/cb"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .expect("token");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().expect("json");
    let claims = verify_id_token(f, body["id_token"].as_str().expect("id"), "spa");
    assert!(
        claims.get("email").is_none(),
        "no email claim without the email scope"
    );
    let header = jsonwebtoken::decode_header(body["id_token"].as_str().expect("id")).expect("h");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
}

fn unregistered_redirect_uris_never_redirect(f: &Fixture) {
    let http = http();
    for query in [
        "client_id=file-portal&redirect_uri=https%3A%2F%2Fevil.example.org%2Fcallback&response_type=code&scope=openid",
        "client_id=file-portal&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback%2Fextra&response_type=code&scope=openid",
        "client_id=file-portal&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback%3Fx%3D1&response_type=code&scope=openid",
        "client_id=unknown&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback&response_type=code&scope=openid",
        "redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback",
        "client_id=file-portal&client_id=spa",
    ] {
        let r = http.get(f.server.url(&format!("/authorize?{query}"))).send().expect("authorize");
        assert_eq!(r.status(), 400, "{query}");
        assert!(r.headers().get("location").is_none(), "never redirects: {query}");
        assert!(r.text().expect("html").contains("portail"));
    }
    // After the redirect URI is trusted, errors go back to it.
    let r = http
        .get(f.server.url("/authorize?client_id=file-portal&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback&response_type=token&scope=openid&state=z"))
        .send()
        .expect("authorize");
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(query_param(&location(&r), "state").as_deref(), Some("z"));
}

fn refresh(
    f: &Fixture,
    http: &Http,
    client: (&str, Option<&str>),
    token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let mut request = http.post(f.server.url("/token"));
    match client {
        (id, Some(secret)) => {
            request = request.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
                ),
            );
        }
        (id, None) => form.push(("client_id", id)),
    }
    let r = request.form(&form).send().expect("refresh");
    (r.status().as_u16(), r.json().expect("json"))
}

/// A person disabled by the helpdesk gets no new tokens from a refresh token issued before;
/// the refusal spends nothing, so the token works again once the person is enabled.
fn a_disabled_persons_refresh_token_is_refused_until_enabled(f: &Fixture) {
    let http = http();
    let portal = ("file-portal", Some(SECRET));
    let (redirect, _) = sign_in(f, &http);
    let code = query_param(&redirect, "code").expect("code");
    let (_, first) = exchange(f, &http, &code, VERIFIER);
    let token = first["refresh_token"].as_str().expect("refresh token");
    let set_disabled = |disabled| {
        let mut conn = f.store.connection().expect("conn");
        assert!(idp::store::users::set_disabled(
            &mut conn,
            &f.user_id,
            disabled,
            idp::store::now()
        )
        .expect("set_disabled"));
    };

    set_disabled(true);
    let (status, refused) = refresh(f, &http, portal, token, None);
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{refused}"
    );
    set_disabled(false);
    let (status, renewed) = refresh(f, &http, portal, token, None);
    assert_eq!(status, 200, "{renewed}");
    assert!(renewed["refresh_token"]
        .as_str()
        .is_some_and(|t| t != token));
}

fn refresh_tokens_rotate_and_reuse_revokes_the_family(f: &Fixture) {
    let http = http();
    let portal = ("file-portal", Some(SECRET));
    let (redirect, session) = sign_in(f, &http);
    let code = query_param(&redirect, "code").expect("code");
    let (_, first) = exchange(f, &http, &code, VERIFIER);
    let r1 = first["refresh_token"]
        .as_str()
        .expect("refresh token issued")
        .to_string();

    let (status, second) = refresh(f, &http, portal, &r1, None);
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    assert_ne!(r1, r2);
    assert!(second.get("id_token").is_none());
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["scope"], "openid email profile");

    // Narrowing works; widening does not; another client cannot use the token.
    let (status, narrow) = refresh(f, &http, portal, &r2, Some("openid"));
    assert_eq!(
        (status, narrow["scope"].as_str()),
        (200, Some("openid")),
        "{narrow}"
    );
    let r3 = narrow["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    let (status, wide) = refresh(f, &http, portal, &r3, Some("openid admin"));
    assert_eq!(
        (status, wide["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, other) = refresh(f, &http, ("spa", None), &r3, None);
    assert_eq!(
        (status, other["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(f, &http, portal, &r3, None);
    assert_eq!(
        status, 200,
        "failed attempts by others leave the token usable"
    );

    // Reusing an old token revokes the whole family, including the newest token.
    let (status, reused) = refresh(f, &http, portal, &r1, None);
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let newest_family_member = {
        let (s, body) = refresh(f, &http, portal, &r3, None);
        (s, body["error"].as_str().map(str::to_string))
    };
    assert_eq!(
        newest_family_member,
        (400, Some("invalid_grant".to_string()))
    );
    let events = audit::recent(&mut f.store.connection().expect("conn"), 50).expect("audit");
    assert!(events
        .iter()
        .any(|e| e.event_type == "token.refresh_reused"));
    assert!(events.iter().any(|e| e.event_type == "token.refreshed"));
    for e in &events {
        assert!(
            !e.detail.contains(&r1) && !e.detail.contains(&r2),
            "refresh token in audit"
        );
    }

    // A replayed code revokes the refresh tokens its first use issued.
    let r = http
        .get(authorize_url(f, ""))
        .header("Cookie", &session)
        .send()
        .expect("sso");
    let code = query_param(&location(&r), "code").expect("code");
    let (_, issued) = exchange(f, &http, &code, VERIFIER);
    let from_code = issued["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let (status, _) = exchange(f, &http, &code, VERIFIER);
    assert_eq!(status, 400);
    let (status, body) = refresh(f, &http, portal, &from_code, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "revoked by the replay"
    );
    let (status, body) = refresh(f, &http, portal, "not-a-token", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

fn userinfo_answers_bearer_tokens_by_scope(f: &Fixture) {
    let http = http();
    let (redirect, _) = sign_in(f, &http);
    let (_, tokens) = exchange(
        f,
        &http,
        &query_param(&redirect, "code").expect("code"),
        VERIFIER,
    );
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_string();

    let r = http
        .get(f.server.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let claims: Value = r.json().expect("json");
    assert_eq!(claims["sub"], f.user_id.as_str());
    assert_eq!(claims["email"], "Marie.Tremblay@example.org");
    assert_eq!(claims["member_code"], "R12345");
    let r = http
        .post(f.server.url("/userinfo"))
        .form(&[("access_token", access.as_str())])
        .send()
        .expect("POST");
    assert_eq!(r.status(), 200, "token in the form body");

    // Missing, tampered, foreign-typed and client-only tokens are refused with a Bearer challenge.
    let mut tampered = access.clone().into_bytes();
    let middle = access.find('.').expect("dot") + 5;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let id_token = tokens["id_token"].as_str().expect("id token").to_string();
    for (token, status, error) in [
        (None, 401, "invalid_token"),
        (Some(tampered.as_str()), 401, "invalid_token"),
        (Some(id_token.as_str()), 401, "invalid_token"),
        (Some("not.a.jwt"), 401, "invalid_token"),
    ] {
        let mut request = http.get(f.server.url("/userinfo"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().expect("GET");
        assert_eq!(r.status(), status);
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains(error),
            "{challenge}"
        );
    }
    // A client_credentials token has no openid scope and no person behind it.
    let r = http
        .post(f.server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "file-portal"),
            ("client_secret", SECRET),
        ])
        .send()
        .expect("token");
    assert_eq!(
        r.status(),
        400,
        "file-portal is not allowed client_credentials"
    );
}

fn post_as(
    f: &Fixture,
    http: &Http,
    path: &str,
    client: (&str, Option<&str>),
    token: &str,
) -> (u16, String) {
    let mut form = vec![("token", token)];
    let mut request = http.post(f.server.url(path));
    match client {
        (id, Some(secret)) => {
            request = request.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
                ),
            );
        }
        (id, None) => form.push(("client_id", id)),
    }
    let r = request.form(&form).send().expect("post");
    (r.status().as_u16(), r.text().expect("body"))
}

fn introspect(f: &Fixture, http: &Http, token: &str) -> Value {
    let (status, body) = post_as(f, http, "/introspect", ("file-portal", Some(SECRET)), token);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

fn revocation_and_introspection(f: &Fixture) {
    let http = http();
    let portal = ("file-portal", Some(SECRET));
    let (redirect, _) = sign_in(f, &http);
    let (_, tokens) = exchange(
        f,
        &http,
        &query_param(&redirect, "code").expect("code"),
        VERIFIER,
    );
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();

    let a = introspect(f, &http, &access);
    assert_eq!(a["active"], true);
    assert_eq!(a["sub"], f.user_id.as_str());
    assert_eq!(a["client_id"], "file-portal");
    assert_eq!(a["scope"], "openid email profile");
    let r = introspect(f, &http, &refresh_token);
    assert_eq!(
        (r["active"].as_bool(), r["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    assert_eq!(
        introspect(f, &http, "garbage"),
        serde_json::json!({ "active": false })
    );
    let (status, _) = post_as(f, &http, "/introspect", ("spa", None), &access);
    assert_eq!(status, 401, "public clients cannot introspect");

    // Another client's revocation request is refused (RFC 7009 2.1) and changes nothing.
    let (status, body) = post_as(f, &http, "/revoke", ("spa", None), &access);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_request"));
    let (status, _) = post_as(f, &http, "/revoke", ("spa", None), &refresh_token);
    assert_eq!(status, 400);
    assert_eq!(introspect(f, &http, &access)["active"], true);
    assert_eq!(introspect(f, &http, &refresh_token)["active"], true);

    let (status, _) = post_as(f, &http, "/revoke", portal, &access);
    assert_eq!(status, 200);
    assert_eq!(introspect(f, &http, &access)["active"], false);
    let r = http
        .get(f.server.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .expect("userinfo");
    assert_eq!(r.status(), 401, "a revoked access token no longer works");

    let (status, _) = post_as(f, &http, "/revoke", portal, &refresh_token);
    assert_eq!(status, 200);
    assert_eq!(introspect(f, &http, &refresh_token)["active"], false);
    let (status, body) = refresh(f, &http, portal, &refresh_token, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, _) = post_as(f, &http, "/revoke", portal, "unknown-token");
    assert_eq!(status, 200, "unknown tokens: nothing to say");
    let (status, body) = post_as(
        f,
        &http,
        "/revoke",
        ("file-portal", Some("wrong-secret-wrong-secret-wrong")),
        &access,
    );
    assert_eq!(status, 401, "{body}");
    let r = http
        .post(f.server.url("/revoke"))
        .basic_auth("file-portal", Some(SECRET))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .expect("post");
    assert_eq!(r.status(), 400, "token is required");

    let events = audit::recent(&mut f.store.connection().expect("conn"), 50).expect("audit");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "token.revoked")
            .count(),
        2
    );
    assert!(events.iter().any(|e| e.event_type == "token.introspected"));
    for e in &events {
        assert!(!e.detail.contains(&access) && !e.detail.contains(&refresh_token));
    }
}

/// A person signed in to the file portal (tokens exchanged) and, by single sign-on, to the
/// second portal. Returns the session cookie, the ID token, its `sid` and the refresh token.
struct TwoPortals {
    session: String,
    id_token: String,
    sid: String,
    refresh_token: String,
}

fn signed_in_to_both_portals(f: &Fixture, http: &Http) -> TwoPortals {
    let (redirect, session) = sign_in(f, http);
    let (_, tokens) = exchange(
        f,
        http,
        &query_param(&redirect, "code").expect("code"),
        VERIFIER,
    );
    let id_token = tokens["id_token"].as_str().expect("id token").to_string();
    let sid = verify_id_token(f, &id_token, "file-portal")["sid"]
        .as_str()
        .expect("sid")
        .to_string();
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let r = http
        .get(f.server.url("/authorize?client_id=atip&redirect_uri=http%3A%2F%2Flocalhost%3A9002%2Fcallback&response_type=code&scope=openid"))
        .header("Cookie", &session)
        .send()
        .expect("sso");
    assert!(
        query_param(&location(&r), "code").is_some(),
        "signed in without a password"
    );
    TwoPortals {
        session,
        id_token,
        sid,
        refresh_token,
    }
}

fn logout_ends_the_session_everywhere(f: &Fixture) {
    let http = http();
    let TwoPortals {
        session,
        id_token,
        sid,
        refresh_token,
    } = signed_in_to_both_portals(f, &http);

    // Refusals first: they end nothing.
    let mut tampered = id_token.clone();
    tampered.insert(id_token.rfind('.').expect("dot") + 3, 'x');
    for query in [
        format!("id_token_hint={tampered}"),
        format!(
            "id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2Fevil.example.org%2F"
        ),
        format!("id_token_hint={id_token}&client_id=atip"),
    ] {
        let r = http
            .get(f.server.url(&format!("/end_session?{query}")))
            .header("Cookie", &session)
            .send()
            .expect("refused");
        assert_eq!(r.status(), 400, "{query}");
        assert!(r.headers().get("location").is_none());
    }

    let r = http
        .get(f.server.url(&format!(
            "/end_session?id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fbye&state=bye-1"
        )))
        .header("Cookie", &session)
        .send()
        .expect("end_session");
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "http://localhost:9000/bye?state=bye-1");
    let cleared = cookie(&r, "guichet_session").expect("session cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // Both portals receive a valid logout token for this session.
    both_portals_told(f, &sid);

    // The session and its refresh tokens are gone.
    session_and_tokens_are_gone(f, &http, &session, &refresh_token, &sid, "rp_initiated");
}

/// The session cookie no longer signs in, the refresh token is refused, and the end of
/// session `sid` is in the audit log, with `how` it ended.
fn session_and_tokens_are_gone(
    f: &Fixture,
    http: &Http,
    session: &str,
    refresh_token: &str,
    sid: &str,
    how: &str,
) {
    let r = http
        .get(authorize_url(f, ""))
        .header("Cookie", session)
        .send()
        .expect("authorize");
    assert_eq!(location(&r), "/login", "the old session no longer signs in");
    let (status, body) = refresh(f, http, ("file-portal", Some(SECRET)), refresh_token, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let events = audit::recent(&mut f.store.connection().expect("conn"), 50).expect("audit");
    let detail = serde_json::json!({ "sid": sid, "how": how });
    assert!(
        events.iter().any(|e| e.event_type == "logout"
            && serde_json::from_str::<Value>(&e.detail).ok().as_ref() == Some(&detail)),
        "no logout event for {sid} ({how})"
    );
}

/// A back-channel notice queued in the database, as a server stopped before delivering it (or
/// another instance) leaves it, is delivered by the running server, then leaves the queue with
/// its audit row.
fn a_notice_left_in_the_queue_is_delivered(f: &Fixture) {
    use idp::store::backchannel_deliveries::{self, Delivery};
    let sid = uuid::Uuid::new_v4().to_string();
    let at = idp::store::now();
    backchannel_deliveries::enqueue(
        &mut f.store.connection().expect("conn"),
        &Delivery {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: "atip".into(),
            user_id: f.user_id.clone(),
            sid: sid.clone(),
            // One attempt was made, and its lease is over.
            attempts: 1,
            next_attempt_at: at - chrono::Duration::seconds(1),
            created_at: at - chrono::Duration::seconds(40),
        },
    )
    .expect("queue");
    let (path, body) = f
        .backchannel
        .received
        .recv_timeout(std::time::Duration::from_secs(15))
        .expect("the queued notice arrives");
    assert_eq!(path, "/bcl/atip");
    let token = query_param(&format!("http://x/?{body}"), "logout_token").expect("logout_token");
    let claims = verify_id_token(f, &token, "atip");
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], f.user_id.as_str());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut conn = f.store.connection().expect("conn");
        let queued = backchannel_deliveries::count(&mut conn).expect("count");
        let events = audit::recent(&mut conn, 20).expect("audit");
        let sent = events.iter().any(|e| {
            e.event_type == "logout.backchannel_sent"
                && e.client_id.as_deref() == Some("atip")
                && serde_json::from_str::<Value>(&e.detail).ok()
                    == Some(serde_json::json!({ "sid": sid, "attempts": 2 }))
        });
        if queued == 0 && sent {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{queued} notices still queued; sent recorded: {sent}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits for the back-channel logout tokens of both portals and checks them: typed, signed
/// for their portal, naming the person and session `sid`.
fn both_portals_told(f: &Fixture, sid: &str) {
    let mut portals: Vec<String> = (0..2)
        .map(|_| {
            let (path, body) = f
                .backchannel
                .received
                .recv_timeout(std::time::Duration::from_secs(15))
                .expect("a back-channel logout arrives");
            let token =
                query_param(&format!("http://x/?{body}"), "logout_token").expect("logout_token");
            let audience = path.trim_start_matches("/bcl/").to_string();
            let header = jsonwebtoken::decode_header(&token).expect("header");
            assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
            let claims = verify_id_token(f, &token, &audience);
            assert_eq!(claims["sid"], sid);
            assert_eq!(claims["sub"], f.user_id.as_str());
            assert!(
                claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object()
            );
            assert!(claims.get("nonce").is_none());
            audience
        })
        .collect();
    portals.sort();
    assert_eq!(portals, vec!["atip", "file-portal"]);
}

/// A password reset from another browser ends the sessions the old password opened, with
/// their back-channel notices, and revokes every refresh token of the person.
fn a_password_reset_ends_every_session_and_its_tokens(f: &Fixture) {
    const NEW_PASSWORD: &str = "Lilas-Quartz-Boreal-42";
    let http = http();
    let TwoPortals {
        session,
        sid,
        refresh_token,
        ..
    } = signed_in_to_both_portals(f, &http);

    // The forgotten-password journey, in a browser of its own.
    let other = support::journey::no_redirects();
    let r = other.get(authorize_url(f, "")).send().expect("authorize");
    let browser = support::journey::Browser {
        http: &other,
        base: &f.server.base,
        tx: support::journey::cookie_pair(&r, "guichet_tx").expect("transaction cookie"),
    };
    let email = "marie.tremblay@example.org";
    let sent = support::journey::outbox_count(f._dir.path());
    assert_eq!(
        browser.post("/login/reset", &[("email", email)]).status(),
        303
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while support::journey::outbox_count(f._dir.path()) == sent {
        assert!(
            std::time::Instant::now() < deadline,
            "no reset code was sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let code = support::journey::latest_code(f._dir.path(), email);
    assert_eq!(
        browser
            .post("/login/reset/code", &[("code", &code)])
            .status(),
        303
    );
    let r = browser.post(
        "/login/password",
        &[("password", NEW_PASSWORD), ("confirmation", NEW_PASSWORD)],
    );
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with(CALLBACK),
        "signed in: {}",
        location(&r)
    );

    // Both portals of the old session hear of its end.
    both_portals_told(f, &sid);
    // The old session no longer signs in, and its refresh token is revoked.
    session_and_tokens_are_gone(f, &http, &session, &refresh_token, &sid, "password_reset");
}

fn logout_without_a_hint_asks_first(f: &Fixture) {
    let http = http();
    let (_, session) = sign_in(f, &http);
    let r = http
        .get(f.server.url("/end_session"))
        .header("Cookie", &session)
        .send()
        .expect("ask");
    assert_eq!(r.status(), 200);
    assert!(
        cookie(&r, "guichet_session").is_none(),
        "asking does not sign out"
    );
    let page = r.text().expect("html");
    let csrf = csrf_of(&page);
    let forged = http
        .post(f.server.url("/end_session/confirm"))
        .header("Cookie", &session)
        .form(&[("csrf", "Zm9yZ2Vk")])
        .send()
        .expect("forged");
    assert_eq!(forged.status(), 400);
    let r = http
        .get(authorize_url(f, ""))
        .header("Cookie", &session)
        .send()
        .expect("still signed in");
    assert!(location(&r).starts_with(CALLBACK));
    let done = http
        .post(f.server.url("/end_session/confirm"))
        .header("Cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .expect("confirm");
    assert_eq!(done.status(), 200);
    assert!(done.text().expect("html").contains("Vous êtes déconnecté"));
    let r = http
        .get(authorize_url(f, ""))
        .header("Cookie", &session)
        .send()
        .expect("authorize");
    assert_eq!(location(&r), "/login");
}

fn id_token_hint_must_name_the_signed_in_person(f: &Fixture) {
    let http = http();
    // Marie signs in and gets an ID token.
    let (redirect, marie_session) = sign_in(f, &http);
    let (_, tokens) = exchange(
        f,
        &http,
        &query_param(&redirect, "code").expect("code"),
        VERIFIER,
    );
    let marie_hint = tokens["id_token"].as_str().expect("id token").to_string();
    // A second person, with their own session.
    let hash = {
        let mut conn = f.store.connection().expect("conn");
        users::find_by_id(&mut conn, &f.user_id)
            .expect("q")
            .expect("marie")
            .password_hash
    };
    users::insert(
        &mut f.store.connection().expect("conn"),
        &NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: "luc.gagnon@example.org".into(),
            member_code: None,
            given_name: "Luc".into(),
            family_name: "Gagnon".into(),
            locale: "en".into(),
            password_hash: hash,
            must_reset: false,
        },
        idp::store::now(),
    )
    .map(|luc| {
        users::set_mfa(
            &mut f.store.connection().expect("conn"),
            &luc.id,
            &users::MfaSetting::Email,
            idp::store::now(),
        )
        .expect("second factor")
    })
    .expect("second user");
    let (_, luc_session) = sign_in_as(f, &http, "luc.gagnon@example.org");

    let hinted = |hint: &str| authorize_url(f, &format!("&prompt=none&id_token_hint={hint}"));
    // Marie's session and Marie's hint: a code, silently.
    let r = http
        .get(hinted(&marie_hint))
        .header("Cookie", &marie_session)
        .send()
        .expect("same");
    assert!(
        query_param(&location(&r), "code").is_some(),
        "{}",
        location(&r)
    );
    // Luc's session but Marie's hint: login_required, no code.
    let r = http
        .get(hinted(&marie_hint))
        .header("Cookie", &luc_session)
        .send()
        .expect("other");
    let back = location(&r);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required"),
        "{back}"
    );
    assert!(query_param(&back, "code").is_none());
    // Without prompt=none, the person is asked to sign in.
    let r = http
        .get(authorize_url(f, &format!("&id_token_hint={marie_hint}")))
        .header("Cookie", &luc_session)
        .send()
        .expect("other");
    assert_eq!(location(&r), "/login");
    // A tampered hint is refused.
    let mut tampered = marie_hint.clone();
    tampered.insert(marie_hint.rfind('.').expect("dot") + 3, 'x');
    let r = http
        .get(hinted(&tampered))
        .header("Cookie", &marie_session)
        .send()
        .expect("tampered");
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );
}

fn partner_authorize(
    http: &Http,
    f: &Fixture,
    session: &str,
    extra: &str,
) -> reqwest::blocking::Response {
    http.get(f.server.url(&format!(
        "/authorize?client_id=partner&redirect_uri=http%3A%2F%2Flocalhost%3A9003%2Fcallback\
         &response_type=code&scope=openid+email&state=p-1&nonce=pn\
         &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    )))
    .header("Cookie", session)
    .send()
    .expect("authorize")
}

/// Opens the consent page of a new transaction; returns the cookies to send and its CSRF token.
fn open_consent(http: &Http, f: &Fixture, session: &str, extra: &str) -> (String, String) {
    let r = partner_authorize(http, f, session, extra);
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/consent");
    let tx = cookie(&r, "guichet_tx").expect("transaction cookie");
    let cookies = format!("{}; {session}", tx.split(';').next().expect("pair"));
    let page = http
        .get(f.server.url("/consent"))
        .header("Cookie", &cookies)
        .send()
        .expect("consent page");
    assert_eq!(page.status(), 200);
    let html = page.text().expect("html");
    assert!(html.contains("Portail partenaire"), "{html}");
    assert!(html.contains("Votre adresse courriel"), "{html}");
    (cookies, csrf_of(&html))
}

/// Posts the consent form with `decision` (`allow` or `deny`).
fn answer_consent(
    http: &Http,
    f: &Fixture,
    cookies: &str,
    csrf: &str,
    decision: &str,
) -> reqwest::blocking::Response {
    http.post(f.server.url("/consent"))
        .header("Cookie", cookies)
        .form(&[("csrf", csrf), ("decision", decision)])
        .send()
        .expect("POST /consent")
}

fn consent_is_asked_once_for_a_third_party_portal(f: &Fixture) {
    let http = http();
    let (_, session) = sign_in(f, &http);
    // prompt=none cannot show the consent page.
    let r = partner_authorize(&http, f, &session, "&prompt=none");
    let back = location(&r);
    assert!(back.starts_with("http://localhost:9003/callback"), "{back}");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("consent_required")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("p-1"));

    // A forged answer (wrong CSRF token) changes nothing; declining sends access_denied.
    let (cookies, csrf) = open_consent(&http, f, &session, "");
    let r = answer_consent(&http, f, &cookies, "forged", "allow");
    assert_eq!(r.status(), 400);
    let r = answer_consent(&http, f, &cookies, csrf.as_str(), "deny");
    let back = location(&r);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied"),
        "{back}"
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("p-1"));

    // Agreeing gives a code that the portal exchanges.
    let (cookies, csrf) = open_consent(&http, f, &session, "");
    let r = answer_consent(&http, f, &cookies, csrf.as_str(), "allow");
    let back = location(&r);
    let code = query_param(&back, "code").expect("code after consent");
    let r = http
        .post(f.server.url("/token"))
        .basic_auth("partner", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:9003/callback"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .expect("token");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().expect("json");
    let claims = verify_id_token(f, body["id_token"].as_str().expect("id_token"), "partner");
    assert_eq!(claims["sub"], f.user_id.as_str());
    // The answer was used once: posting it again finds nothing.
    let r = answer_consent(&http, f, &cookies, csrf.as_str(), "allow");
    assert_eq!(r.status(), 400);

    // Remembered: the same scopes need no new consent, even with prompt=none...
    let r = partner_authorize(&http, f, &session, "&prompt=none");
    assert!(
        query_param(&location(&r), "code").is_some(),
        "{}",
        location(&r)
    );
    // ...but wider scopes, or prompt=consent, ask again.
    let r = http
        .get(f.server.url(&format!(
            "/authorize?client_id=partner&redirect_uri=http%3A%2F%2Flocalhost%3A9003%2Fcallback\
             &response_type=code&scope=openid+email+profile&state=p-1\
             &code_challenge={CHALLENGE}&code_challenge_method=S256"
        )))
        .header("Cookie", &session)
        .send()
        .expect("wider");
    assert_eq!(location(&r), "/consent");
    open_consent(&http, f, &session, "&prompt=consent");

    let conn = &mut f.store.connection().expect("conn");
    let events: Vec<String> = audit::for_subject(conn, &f.user_id, 50)
        .expect("audit")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(events.iter().any(|e| e == "consent.granted"), "{events:?}");
    assert!(events.iter().any(|e| e == "consent.denied"), "{events:?}");
}

fn form_post_answers_with_an_auto_submitted_form(f: &Fixture) {
    let http = http();
    // An error answered in form_post mode: login_required, posted back with state.
    let r = http
        .get(authorize_url(f, "&prompt=none&response_mode=form_post"))
        .send()
        .expect("none");
    assert_eq!(r.status(), 200);
    let html = r.text().expect("html");
    assert!(
        html.contains(r#"name="error" value="login_required""#),
        "{html}"
    );
    assert!(html.contains(r#"name="state" value="st-1""#), "{html}");

    let (_, session) = sign_in(f, &http);
    let r = http
        .get(authorize_url(f, "&response_mode=form_post"))
        .header("Cookie", &session)
        .send()
        .expect("form_post");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none(), "no redirect");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains(&format!("form-action {CALLBACK}")), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().expect("html");
    assert!(
        html.contains(&format!(r#"<form method="post" action="{CALLBACK}">"#)),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"name="iss" value="{ISSUER}""#)),
        "{html}"
    );
    let start = html.find(r#"name="code" value=""#).expect("code field") + 19;
    let code = &html[start..start + html[start..].find('"').expect("end")];
    let (status, body) = exchange(f, &http, code, VERIFIER);
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string());
}

/// With `tokens.refresh_grace_secs`, a client that lost the answer to a refresh and retries it
/// gets the same pair back; once the new token is used, or the window is over, a retry is a
/// reuse and revokes the family.
mod grace_window {
    use super::*;

    fn start_with_grace(postgres: bool) -> Fixture {
        start_with(postgres, &[("GUICHET_TOKENS__REFRESH_GRACE_SECS", "2")])
    }

    on_both_backends!(start_with_grace; a_retried_refresh_gets_the_same_pair);

    fn first_refresh_token(f: &Fixture, http: &Http) -> String {
        let (redirect, _) = sign_in(f, http);
        let code = query_param(&redirect, "code").expect("code");
        let (_, body) = exchange(f, http, &code, VERIFIER);
        body["refresh_token"].as_str().expect("refresh").to_string()
    }

    fn a_retried_refresh_gets_the_same_pair(f: &Fixture) {
        let http = http();
        let portal = ("file-portal", Some(SECRET));
        let r0 = first_refresh_token(f, &http);
        let (status, first) = refresh(f, &http, portal, &r0, None);
        assert_eq!(status, 200, "{first}");
        let (status, retried) = refresh(f, &http, portal, &r0, None);
        assert_eq!(status, 200, "a retry within the window: {retried}");
        assert_eq!(retried["access_token"], first["access_token"]);
        assert_eq!(retried["refresh_token"], first["refresh_token"]);
        let r1 = first["refresh_token"].as_str().expect("r1");
        // Another client cannot use the retry.
        let (status, body) = refresh(f, &http, ("atip", Some(SECRET)), &r0, None);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // The new token works; after that, the old one again is a reuse: family revoked.
        let (status, second) = refresh(f, &http, portal, r1, None);
        assert_eq!(status, 200, "{second}");
        let (status, body) = refresh(f, &http, portal, &r0, None);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let r2 = second["refresh_token"].as_str().expect("r2");
        let (status, body) = refresh(f, &http, portal, r2, None);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "the whole family is revoked"
        );

        // Past the window, a retry is a reuse even though the new token was never used.
        let r0 = first_refresh_token(f, &http);
        let (status, first) = refresh(f, &http, portal, &r0, None);
        assert_eq!(status, 200, "{first}");
        std::thread::sleep(std::time::Duration::from_millis(2_200));
        let (status, body) = refresh(f, &http, portal, &r0, None);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let r1 = first["refresh_token"].as_str().expect("r1");
        let (status, _) = refresh(f, &http, portal, r1, None);
        assert_eq!(status, 400, "revoked with its family");

        let conn = &mut f.store.connection().expect("conn");
        let events: Vec<String> = audit::for_subject(conn, &f.user_id, 100)
            .expect("audit")
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(
            events
                .iter()
                .filter(|e| *e == "token.refresh_retried")
                .count(),
            1,
            "{events:?}"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| *e == "token.refresh_reused")
                .count(),
            2,
            "{events:?}"
        );
    }
}

/// A back-channel notice whose portal is down when the session ends waits in the database
/// through a stop of the server, and the server started again on the same database delivers
/// it once the portal is back.
fn notices_outlive_a_restart(postgres: bool) {
    use support::journey::{authorize_and_sign_in, cookie_pair, unverified_claims};
    let portal_port = free_port(); // nothing listens there yet
    let config = CLIENTS.replace("BCL_PORT", &portal_port.to_string());
    let port = free_port();
    let Deployment {
        server,
        master_key,
        store,
        dir,
        postgres,
    } = Deployment::start(&config, postgres, port, &[]);
    let base = server.base.clone();
    let email = "depart@example.org";
    support::server::person_with_emailed_codes(&store, email, PASSWORD, None);
    let http = http();
    let r = authorize_and_sign_in(
        &http,
        &base,
        "/authorize?client_id=file-portal&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback\
         &response_type=code&scope=openid&state=s&nonce=n",
        dir.path(),
        email,
        PASSWORD,
    );
    let session = cookie_pair(&r, "guichet_session").expect("session");
    let code = query_param(&location(&r), "code").expect("code");
    let tokens: Value = http
        .post(format!("{base}/token"))
        .basic_auth("file-portal", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .expect("token")
        .json()
        .expect("json");
    let id_token = tokens["id_token"].as_str().expect("id token").to_string();
    let sid = unverified_claims(&id_token)["sid"]
        .as_str()
        .expect("sid")
        .to_string();

    let r = http
        .get(format!("{base}/end_session?id_token_hint={id_token}"))
        .header("Cookie", &session)
        .send()
        .expect("end_session");
    assert!(r.status().is_success(), "{}", r.status());
    let queued = || {
        idp::store::backchannel_deliveries::count(&mut store.connection().expect("conn"))
            .expect("count")
    };
    assert_eq!(queued(), 1, "the notice is queued with the logout");
    // The first attempt finds the portal down; the server stops before the last one.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(queued(), 1, "the stop loses nothing");

    // The portal is back; the server starts again on the same database and delivers.
    let portal = backchannel_on(portal_port);
    let key = master_key.to_base64();
    let mut env = vec![
        ("GUICHET_CONFIG", "idp.toml"),
        ("GUICHET_MASTER_KEY", key.as_str()),
        ("GUICHET_SIGN_IN__ARGON2_M_COST_KIB", "1024"),
        ("GUICHET_SIGN_IN__ARGON2_T_COST", "1"),
    ];
    if let Some(pg) = &postgres {
        env.push(("GUICHET_DATABASE_URL", pg.url.as_str()));
    }
    let _restarted = Server::start_on(dir.path(), port, &env);
    // A stop in the middle of an attempt leaves the notice leased for 30 s.
    let (path, body) = portal
        .received
        .recv_timeout(std::time::Duration::from_secs(45))
        .expect("the notice arrives after the restart");
    assert_eq!(path, "/bcl/file-portal");
    let token = query_param(&format!("http://x/?{body}"), "logout_token").expect("logout_token");
    assert_eq!(unverified_claims(&token)["sid"], sid.as_str());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while queued() != 0 {
        assert!(std::time::Instant::now() < deadline, "still queued");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sqlite_notices_outlive_a_restart() {
    notices_outlive_a_restart(false);
}

#[test]
fn postgres_notices_outlive_a_restart() {
    notices_outlive_a_restart(true);
}
