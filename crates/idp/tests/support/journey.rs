//! Walking the sign-in journey over HTTP, as a browser without JavaScript would.

use std::path::Path;

use reqwest::blocking::{Client, Response};

/// The `name=value` pair of a Set-Cookie header named `name`.
pub fn cookie_pair(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// The Location header.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The CSRF token of the first form of a page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[start..start + html[start..].find('"').expect("end")].to_string()
}

/// A browser without JavaScript: no automatic redirects, cookies sent by hand.
pub struct Browser<'a> {
    pub http: &'a Client,
    pub base: &'a str,
    /// `name=value` of the login transaction cookie.
    pub tx: String,
}

impl Browser<'_> {
    /// GET `path` with the transaction cookie; returns status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.tx)
            .send()
            .expect("GET");
        (r.status().as_u16(), r.text().expect("body"))
    }

    /// The CSRF token of the current page.
    pub fn csrf(&self) -> String {
        let (status, page) = self.get("/login");
        assert_eq!(status, 200, "{page}");
        csrf_of(&page)
    }

    /// POSTs a form (the CSRF token of the current page added) to `path`.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.http
            .post(format!("{}{path}", self.base))
            .header("Cookie", &self.tx)
            .form(&all)
            .send()
            .expect("POST")
    }
}

/// The code of the newest mail to `recipient` in the outbox of a server whose working
/// directory is `dir`.
pub fn latest_code(dir: &Path, recipient: &str) -> String {
    let outbox = mail_worker::Outbox::open(dir.join("data/outbox")).expect("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let messages = outbox.messages().expect("messages");
        if let Some(job) = messages
            .iter()
            .rev()
            .find(|m| m.recipient.eq_ignore_ascii_case(recipient.trim()))
        {
            return job.parameters["code"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail to {recipient} in the outbox"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// How many mails the outbox holds.
pub fn outbox_count(dir: &Path) -> usize {
    mail_worker::Outbox::open(dir.join("data/outbox"))
        .expect("outbox")
        .messages()
        .expect("messages")
        .len()
}

/// Password then emailed code; returns the answer to the code (303 to the portal when it
/// worked).
pub fn password_and_email_code(
    browser: &Browser,
    dir: &Path,
    email: &str,
    password: &str,
) -> Response {
    let before = outbox_count(dir);
    let r = browser.post("/login", &[("email", email), ("password", password)]);
    assert_eq!(r.status(), 303, "password accepted");
    assert!(location(&r).starts_with("/login"), "{}", location(&r));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while outbox_count(dir) == before {
        assert!(std::time::Instant::now() < deadline, "no code was sent");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let code = latest_code(dir, email);
    browser.post("/login/second-factor", &[("code", &code)])
}

/// The authenticator code at `unix_time` for `secret`.
pub fn totp_code(secret: &[u8], unix_time: u64) -> String {
    idp::authn::totp::Authenticator::new("Guichet", "x", secret.to_vec()).code_at(unix_time)
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A client that follows no redirect: the tests look at every hop.
pub fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Follows an authorization request (`authorize`: a URL, or a path on `base`) to the sign-in
/// page and signs in with password and emailed code; returns the answer (303 to the client).
pub fn authorize_and_sign_in(
    http: &Client,
    base: &str,
    authorize: &str,
    dir: &Path,
    email: &str,
    password: &str,
) -> Response {
    let url = if authorize.starts_with('/') {
        format!("{base}{authorize}")
    } else {
        authorize.to_string()
    };
    let r = http.get(url).send().expect("authorize");
    assert_eq!(location(&r), "/login");
    let browser = Browser {
        http,
        base,
        tx: cookie_pair(&r, "guichet_tx").expect("transaction cookie"),
    };
    password_and_email_code(&browser, dir, email, password)
}

/// A portal's access token for `email`: the file portal of the test configurations
/// (`file-portal`, its test secret, callback `http://127.0.0.1:9/callback`) signs the person in
/// with password and emailed code and exchanges the code.
pub fn file_portal_access_token(
    http: &Client,
    base: &str,
    dir: &Path,
    email: &str,
    password: &str,
) -> String {
    let authorize = "/authorize?client_id=file-portal&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&response_type=code&scope=openid&state=s&nonce=n";
    let r = authorize_and_sign_in(http, base, authorize, dir, email, password);
    let code = location(&r)
        .split("code=")
        .nth(1)
        .and_then(|c| c.split('&').next())
        .expect("code")
        .to_string();
    let tokens: serde_json::Value = http
        .post(format!("{base}/token"))
        .basic_auth(
            "file-portal",
            Some("ZmlsZS1wb3J0YWwtdGVzdHMtb25seS1ub3QtYS1zZWNyZXQ"),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
        ])
        .send()
        .expect("token")
        .json()
        .expect("json");
    tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// The claims of a JWT, read without checking its signature (the tests that rely on a
/// signature check it against the JWKS).
pub fn unverified_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims")
}
