//! The account page (`/account`) over HTTP against the real binary, on SQLite and PostgreSQL:
//! it signs in through `/authorize` like any client, needs both its access token and a live
//! SSO session, refuses a forged callback and a form without its CSRF token, ends another
//! session, and `/account/api/sign-ins` answers only to a valid access token.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use idp::store::users;
use support::free_port;
use support::journey::{authorize_and_sign_in, cookie_pair, csrf_of, location, no_redirects};
use support::server::{person_with_emailed_codes, Deployment};

const EMAIL: &str = "jean.roy@example.org";
const PASSWORD: &str = "Correct-Horse-Battery-9";

/// A browser's cookies after signing in to the account page.
struct SignedIn {
    session: String,
    account: String,
}

impl SignedIn {
    fn both(&self) -> String {
        format!("{}; {}", self.session, self.account)
    }
}

/// `/account` -> `/authorize` -> sign-in (password, emailed code) -> `/account/callback`.
fn sign_in(d: &Deployment, http: &reqwest::blocking::Client, base: &str) -> SignedIn {
    let r = http.get(format!("{base}/account")).send().expect("account");
    assert_eq!(r.status(), 303);
    let pending = cookie_pair(&r, "guichet_account_login").expect("pending sign-in cookie");
    let to = location(&r);
    assert!(
        to.starts_with("/authorize?client_id=guichet-account&"),
        "{to}"
    );
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    let r = authorize_and_sign_in(http, base, &to, d.dir.path(), EMAIL, PASSWORD);
    let session = cookie_pair(&r, "guichet_session").expect("session cookie");
    let back = location(&r);
    assert!(
        back.starts_with(&format!("{base}/account/callback?")),
        "{back}"
    );
    let r = http
        .get(&back)
        .header("Cookie", &pending)
        .send()
        .expect("callback");
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    let account = cookie_pair(&r, "guichet_account").expect("account cookie");
    SignedIn { session, account }
}

fn account_page(postgres: bool) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Deployment::start("", postgres, port, &[("GUICHET_PUBLIC_URL", &base)]);
    person_with_emailed_codes(&d.store, EMAIL, PASSWORD, Some("R12345"));
    let http = no_redirects();

    // A forged callback (no pending sign-in, or a state that does not match) is refused.
    let r = http
        .get(format!("{base}/account/callback?code=x&state=y&iss={base}"))
        .send()
        .expect("callback");
    assert_eq!(r.status(), 400);
    assert!(cookie_pair(&r, "guichet_account").is_none_or(|c| c == "guichet_account="));

    let first = sign_in(&d, &http, &base);
    let page = |cookies: &str| {
        let r = http
            .get(format!("{base}/account"))
            .header("Cookie", cookies)
            .header("Accept-Language", "en")
            .send()
            .expect("account");
        (r.status().as_u16(), location(&r), r.text().expect("body"))
    };
    let (status, _, html) = page(&first.both());
    assert_eq!(status, 200, "{html}");
    for expected in ["Jean Roy", EMAIL, "R12345", "Emailed code", "This browser"] {
        assert!(html.contains(expected), "{expected} missing:\n{html}");
    }
    assert!(html.contains("id=\"account-sign-ins\""), "{html}");
    // Times are shown in the deployment's zone (America/Toronto by default), not UTC.
    assert!(
        html.contains(" EST<") || html.contains(" EDT<"),
        "local times:\n{html}"
    );
    assert!(!html.contains(" UTC<"), "{html}");

    // The access token alone, or the session alone, is not enough.
    let (status, to, _) = page(&first.account);
    assert_eq!(status, 303);
    assert!(to.starts_with("/authorize?"), "{to}");
    let (status, _, _) = page(&first.session);
    assert_eq!(status, 303);

    // The account API: the person's recent sign-ins for a valid access token only.
    let token = first.account.trim_start_matches("guichet_account=");
    let r = http
        .get(format!("{base}/account/api/sign-ins"))
        .bearer_auth(token)
        .send()
        .expect("api");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().expect("json");
    let entries = body["sign_ins"].as_array().expect("list");
    assert_eq!(entries[0]["client_id"], "guichet-account");
    assert_eq!(entries[0]["how"], "password");
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    for bad in [None, Some("not-a-token")] {
        let mut request = http.get(format!("{base}/account/api/sign-ins"));
        if let Some(t) = bad {
            request = request.bearer_auth(t);
        }
        let r = request.send().expect("api");
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = r.json().expect("json error");
        assert_eq!(body["error"], "invalid_token");
    }

    // A second browser signs in; the first ends that session from its account page.
    let second = sign_in(&d, &http, &base);
    let (_, _, html) = page(&first.both());
    assert_eq!(
        html.matches("name=\"sid\"").count(),
        2,
        "two sessions listed"
    );
    let sids: Vec<String> = {
        let mut conn = d.store.connection().expect("conn");
        let user = users::find_by_email(&mut conn, EMAIL)
            .expect("query")
            .expect("user");
        idp::store::sso_sessions::live_for_user(&mut conn, &user.id, idp::store::now())
            .expect("sessions")
            .into_iter()
            .map(|s| s.sid)
            .collect()
    };
    assert_eq!(sids.len(), 2);
    // The newest session is the second browser's.
    let other = sids[0].clone();
    let csrf = csrf_of(&html);
    let end = |cookies: &str, csrf: &str| {
        http.post(format!("{base}/account/sessions/end"))
            .header("Cookie", cookies)
            .form(&[("csrf", csrf), ("sid", other.as_str())])
            .send()
            .expect("end")
    };
    // Without the page's CSRF token nothing ends.
    let r = end(&first.both(), "forged");
    assert_eq!(r.status(), 400);
    assert_eq!(
        page(&second.both()).0,
        200,
        "the second browser is still signed in"
    );
    let r = end(&first.both(), &csrf);
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=ended");
    assert_eq!(
        page(&second.both()).0,
        303,
        "the second browser is signed out"
    );
    let r = http
        .get(format!("{base}/account?done=ended"))
        .header("Cookie", first.both())
        .header("Accept-Language", "en")
        .send()
        .expect("account");
    assert_eq!(r.status(), 200);
    let html = r.text().expect("body");
    assert!(html.contains("The session has ended"), "{html}");
    assert_eq!(html.matches("name=\"sid\"").count(), 1);
}

#[test]
fn sqlite_account_page() {
    account_page(false);
}

#[test]
fn postgres_account_page() {
    account_page(true);
}
