//! A relying party written with the `openidconnect` crate, with none of its checks relaxed,
//! against the real binary on SQLite and PostgreSQL: discovery, the code flow with PKCE, ID
//! token validation (signature, issuer, audience, nonce, expiry, at_hash), userinfo, refresh,
//! revocation and RP-initiated logout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use idp::store::users::{self, NewUser};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndSessionUrl, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PostLogoutRedirectUrl, RedirectUrl, RevocationUrl, Scope, TokenResponse,
};
use support::free_port;
use support::server::{cheap_password_hash, Deployment};

const SECRET: &str = "cnAtdGVzdHMtb25seS1ub3QtYS1yZWFsLXNlY3JldC0x";
const PASSWORD: &str = "Correct-Horse-Battery-9";

fn config() -> String {
    format!(
        r#"
[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "{SECRET}"
redirect_uris = ["http://localhost:9000/callback"]
post_logout_redirect_uris = ["http://localhost:9000/bye"]
"#
    )
}

fn run_relying_party(postgres: bool) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let deployment = Deployment::start(
        &config(),
        postgres,
        port,
        &[("GUICHET_PUBLIC_URL", &issuer)],
    );
    let user = users::insert(
        &mut deployment.store.connection().expect("conn"),
        &NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: "jean.roy@example.org".into(),
            member_code: None,
            given_name: "Jean".into(),
            family_name: "Roy".into(),
            locale: "fr-CA".into(),
            password_hash: Some(cheap_password_hash(PASSWORD)),
            must_reset: false,
        },
        idp::store::now(),
    )
    .expect("user");
    // Jean uses an authenticator app.
    let secret = idp::authn::totp::new_secret();
    let sealed =
        idp::authn::totp::seal_secret(&deployment.master_key, &user.id, &secret).expect("seal");
    users::set_mfa(
        &mut deployment.store.connection().expect("conn"),
        &user.id,
        &users::MfaSetting::Totp(sealed),
        idp::store::now(),
    )
    .expect("second factor");

    // The relying party: discovery, then a client from the metadata.
    let http = openidconnect::reqwest::blocking::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let metadata =
        CoreProviderMetadata::discover(&IssuerUrl::new(issuer.clone()).expect("issuer"), &http)
            .expect("discovery");
    assert!(metadata
        .response_types_supported()
        .iter()
        .any(|r| r.as_slice() == [CoreResponseType::Code]));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("file-portal".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new("http://localhost:9000/callback".into()).expect("redirect"))
    .set_revocation_url(RevocationUrl::new(format!("{issuer}/revoke")).expect("revocation url"));

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser's part: authorize, sign in, come back with a code.
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser");
    let r = browser.get(auth_url.as_str()).send().expect("authorize");
    assert_eq!(r.status(), 303);
    let tx = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("guichet_tx="))
        .and_then(|v| v.split(';').next())
        .expect("transaction cookie")
        .to_string();
    let journey = support::journey::Browser {
        http: &browser,
        base: &issuer,
        tx: tx.clone(),
    };
    let r = journey.post(
        "/login",
        &[("email", "jean.roy@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(r.status(), 303);
    let (status, page) = journey.get("/login");
    assert_eq!(status, 200);
    assert!(page.contains("autocomplete=\"one-time-code\""), "{page}");
    let code = support::journey::totp_code(&secret, support::journey::unix_now());
    let r = journey.post("/login/second-factor", &[("code", &code)]);
    assert_eq!(r.status(), 303);
    let session_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("guichet_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let back = url::Url::parse(r.headers()["location"].to_str().expect("ascii")).expect("url");
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect(name)
    };
    assert_eq!(param("state"), *csrf.secret(), "state comes back");
    assert_eq!(param("iss"), issuer);

    // The exchange and a strict ID token validation.
    let tokens = client
        .exchange_code(AuthorizationCode::new(param("code")))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request(&http)
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("ID token valid");
    assert_eq!(claims.subject().as_str(), user.id);
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("jean.roy@example.org")
    );
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key"),
    )
    .expect("hash");
    assert_eq!(&actual_hash, expected_hash);

    // UserInfo.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint known")
        .request(&http)
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user.id);
    assert_eq!(
        info.email().map(|e| e.as_str()),
        Some("jean.roy@example.org")
    );

    // Refresh, then revoke the new refresh token: it no longer refreshes.
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .expect("token endpoint known")
        .request(&http)
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let newest = refreshed
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    // The oauth2 crate sends revocations only over https (RFC 7009 requires TLS), and this test
    // server speaks plain http on loopback; the portal's back end posts the request itself.
    assert!(matches!(
        client.revoke_token(newest.clone().into()),
        Err(openidconnect::ConfigurationError::InsecureUrl(_))
    ));
    let revoked = browser
        .post(format!("{issuer}/revoke"))
        .basic_auth("file-portal", Some(SECRET))
        .form(&[
            ("token", newest.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .expect("revocation");
    assert_eq!(revoked.status(), 200);
    assert!(
        client
            .exchange_refresh_token(&newest)
            .expect("token endpoint known")
            .request(&http)
            .is_err(),
        "a revoked refresh token is refused"
    );

    // RP-initiated logout with the ID token as hint.

    let logout =
        LogoutRequest::from(EndSessionUrl::new(format!("{issuer}/end_session")).expect("url"))
            .set_id_token_hint(id_token)
            .set_post_logout_redirect_uri(
                PostLogoutRedirectUrl::new("http://localhost:9000/bye".into()).expect("url"),
            )
            .set_state(CsrfToken::new("bye".into()))
            .http_get_url();
    let r = browser
        .get(logout.as_str())
        .header("Cookie", &session_cookie)
        .send()
        .expect("logout");
    assert_eq!(
        r.status(),
        303,
        "the hint names this session: no confirmation needed"
    );
    assert_eq!(
        r.headers()["location"],
        "http://localhost:9000/bye?state=bye"
    );
    // The session is over: a new authorization asks for a sign-in again.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (again, _, _) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let r = browser
        .get(again.as_str())
        .header("Cookie", &session_cookie)
        .send()
        .expect("authorize");
    assert_eq!(r.headers()["location"], "/login");
    drop(deployment);
}

#[test]
fn sqlite_openidconnect_relying_party() {
    run_relying_party(false);
}

#[test]
fn postgres_openidconnect_relying_party() {
    run_relying_party(true);
}
