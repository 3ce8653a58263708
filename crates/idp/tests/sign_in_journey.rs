//! The sign-in journey through the real binary, on SQLite and PostgreSQL: first login of an
//! imported member, authenticator and emailed-code sign-ins, code replacement, lockout (also
//! under fifty concurrent guesses), no enumeration, and the language choice.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use idp::store::users::{self, MfaSetting, NewUser};
use idp::store::{audit, Store};
use reqwest::blocking::Client as Http;
use serde_json::Value;
use support::journey::{
    cookie_pair, csrf_of, latest_code, location, outbox_count, totp_code, unix_now, Browser,
};
use support::server::{cheap_password_hash, Deployment, Server};
use support::{free_port, EmptyPostgres};

const SECRET: &str = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ";
const PASSWORD: &str = "Correct-Horse-Battery-9";
const NEW_PASSWORD: &str = "Lilas-Quartz-Boreal-42";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CALLBACK: &str = "http://localhost:9000/callback";

const CONFIG: &str = r#"
[sign_in]
totp_issuer = "CPAQCPROD"
resend_interval_secs = 0

[[clients]]
id = "file-portal"
name = "Portail des membres"
first_party = true
secret = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"
redirect_uris = ["http://localhost:9000/callback"]
"#;

struct Fixture {
    server: Server,
    store: Store,
    master_key: idp::crypto::MasterKey,
    dir: tempfile::TempDir,
    _pg: Option<EmptyPostgres>,
}

fn start(postgres: bool) -> Fixture {
    start_with(postgres, &[])
}

fn start_with(postgres: bool, env: &[(&str, &str)]) -> Fixture {
    let Deployment {
        server,
        master_key,
        store,
        dir,
        postgres,
    } = Deployment::start(CONFIG, postgres, free_port(), env);
    Fixture {
        server,
        store,
        master_key,
        dir,
        _pg: postgres,
    }
}

impl Fixture {
    fn add_user(&self, email: &str, password: Option<&str>, mfa: MfaSetting) -> String {
        let mut conn = self.store.connection().expect("conn");
        let user = users::insert(
            &mut conn,
            &NewUser {
                id: uuid::Uuid::new_v4().to_string(),
                email: email.into(),
                member_code: None,
                given_name: "Marie".into(),
                family_name: "Tremblay".into(),
                locale: "fr-CA".into(),
                password_hash: password.map(cheap_password_hash),
                must_reset: password.is_none(),
            },
            idp::store::now(),
        )
        .expect("user");
        users::set_mfa(&mut conn, &user.id, &mfa, idp::store::now()).expect("mfa");
        user.id
    }

    /// A user with an authenticator app; returns their id and secret.
    fn add_totp_user(&self, email: &str) -> (String, Vec<u8>) {
        let id = self.add_user(email, Some(PASSWORD), MfaSetting::None);
        let secret = idp::authn::totp::new_secret();
        let sealed = idp::authn::totp::seal_secret(&self.master_key, &id, &secret).expect("seal");
        users::set_mfa(
            &mut self.store.connection().expect("conn"),
            &id,
            &MfaSetting::Totp(sealed),
            idp::store::now(),
        )
        .expect("mfa");
        (id, secret)
    }

    /// Starts a sign-in at the portal (extra authorize parameters in `extra`).
    fn begin<'a>(&'a self, http: &'a Http, extra: &str) -> Browser<'a> {
        let r = http
            .get(self.server.url(&format!(
                "/authorize?client_id=file-portal&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback\
                 &response_type=code&scope=openid+email&state=st&nonce=no\
                 &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
            )))
            .send()
            .expect("authorize");
        assert_eq!(r.status(), 303);
        Browser {
            http,
            base: &self.server.base,
            tx: cookie_pair(&r, "guichet_tx").expect("transaction cookie"),
        }
    }

    fn audit_count(&self, event_type: &str, reason: Option<&str>) -> usize {
        let mut conn = self.store.connection().expect("conn");
        audit::recent(&mut conn, 10_000)
            .expect("audit")
            .iter()
            .filter(|e| e.event_type == event_type)
            .filter(|e| {
                reason.is_none_or(|r| {
                    serde_json::from_str::<Value>(&e.detail).expect("detail")["reason"] == r
                })
            })
            .count()
    }
}

fn http() -> Http {
    Http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Exchanges the code of a redirect to the portal; returns the ID token's claims.
fn tokens(f: &Fixture, http: &Http, redirect: &str) -> Value {
    assert!(redirect.starts_with(CALLBACK), "{redirect}");
    let code = query_param(redirect, "code").expect("code");
    let r = http
        .post(f.server.url("/token"))
        .basic_auth("file-portal", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .expect("token");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().expect("json");
    support::journey::unverified_claims(body["id_token"].as_str().expect("id_token"))
}

/// The key shown in `#totp-secret`, decoded.
fn secret_on_page(page: &str) -> Vec<u8> {
    let start = page.find("id=\"totp-secret\">").expect("#totp-secret") + 17;
    let end = start + page[start..].find("</code>").expect("end");
    let key: String = page[start..end].split_whitespace().collect();
    totp_rs::Secret::Encoded(key).to_bytes().expect("base32")
}

fn imported_member_first_login_through_to_tokens(f: &Fixture) {
    let email = "nouveau.membre@example.org";
    let id = f.add_user(email, None, MfaSetting::None);
    let http = http();
    let b = f.begin(&http, "");

    // An imported member has no password: the login page points to the first-login journey.
    let r = b.post("/login", &[("email", email), ("password", "anything")]);
    assert_eq!(r.status(), 200);
    let page = r.text().expect("html");
    assert!(page.contains("pas encore activé"), "{page}");
    assert!(page.contains("Première connexion ou mot de passe oublié?"));

    // First login: email, code, new password.
    let (status, page) = b.get("/login/reset");
    assert_eq!(status, 200);
    assert!(page.contains("autocomplete=\"username\""));
    let csrf = csrf_of(&page);
    let r = http
        .post(f.server.url("/login/reset"))
        .header("Cookie", &b.tx)
        .form(&[("csrf", csrf.as_str()), ("email", email)])
        .send()
        .expect("reset");
    assert_eq!(r.status(), 303);
    let code = latest_code(f.dir.path(), email);
    assert_eq!(code.len(), 6);
    let r = b.post("/login/reset/code", &[("code", &code)]);
    assert_eq!(r.status(), 303);
    let (_, page) = b.get("/login");
    assert!(page.contains("autocomplete=\"new-password\""), "{page}");
    assert!(
        page.contains("au moins 10 caractères"),
        "the policy comes first"
    );

    // The policy says which rule failed; the password is never shown back.
    let weak = b.post(
        "/login/password",
        &[("password", "Password123"), ("confirmation", "Password123")],
    );
    let weak = weak.text().expect("html");
    assert!(weak.contains("trop facile à deviner"), "{weak}");
    assert!(!weak.contains("Password123"));
    let short = b.post(
        "/login/password",
        &[("password", "Ab1!"), ("confirmation", "Ab1!")],
    );
    assert!(short.text().expect("html").contains("trop court"));
    let r = b.post(
        "/login/password",
        &[("password", NEW_PASSWORD), ("confirmation", NEW_PASSWORD)],
    );
    assert_eq!(r.status(), 303);

    // No method yet: choose the app, read the key from the page, answer with a code.
    let (_, page) = b.get("/login");
    assert!(page.contains("name=\"method\""), "{page}");
    let r = b.post("/login/enrol", &[("method", "app")]);
    assert_eq!(r.status(), 303);
    let (_, page) = b.get("/login");
    assert!(page.contains("<svg "), "QR code rendered on the server");
    assert!(page.contains("otpauth://totp/CPAQCPROD:"), "{page}");
    let secret = secret_on_page(&page);
    let wrong = b.post("/login/enrol/app", &[("code", "000000")]);
    assert_eq!(wrong.status(), 200, "a wrong first code does not activate");
    let code = totp_code(&secret, unix_now());
    let r = b.post("/login/enrol/app", &[("code", &code)]);
    assert_eq!(r.status(), 303);
    assert!(cookie_pair(&r, "guichet_session").is_some());
    let claims = tokens(f, &http, &location(&r));
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "mfa");

    let user = users::find_by_id(&mut f.store.connection().expect("conn"), &id)
        .expect("q")
        .expect("user");
    assert!(!user.must_reset);
    assert_eq!(user.mfa_method, users::MfaMethod::Totp);
    assert_eq!(f.audit_count("mfa.enrolled", None), 1);
    assert_eq!(f.audit_count("password.changed", None), 1);

    // A later sign-in with the new password and a fresh code; the activation code is spent.
    let b = f.begin(&http, "");
    let r = b.post("/login", &[("email", email), ("password", NEW_PASSWORD)]);
    assert_eq!(r.status(), 303);
    let replay = b.post("/login/second-factor", &[("code", &code)]);
    assert!(replay.text().expect("html").contains("déjà été utilisé"));
    let next = totp_code(&secret, unix_now() + 30);
    let r = b.post("/login/second-factor", &[("code", &next)]);
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with(CALLBACK));
}

fn authenticator_sign_in_refuses_a_replayed_code(f: &Fixture) {
    let (_, secret) = f.add_totp_user("app@example.org");
    let http = http();
    let now = unix_now();
    let code = totp_code(&secret, now);

    let b = f.begin(&http, "");
    let r = b.post(
        "/login",
        &[("email", "APP@example.org "), ("password", PASSWORD)],
    );
    assert_eq!(r.status(), 303);
    let (_, page) = b.get("/login");
    assert!(page.contains("CPAQCPROD"), "the app account is named");
    assert!(page.contains("autocomplete=\"one-time-code\""));
    let wrong = b.post("/login/second-factor", &[("code", "123456")]);
    assert_eq!(wrong.status(), 200);
    assert!(wrong.text().expect("html").contains("Code incorrect"));
    let r = b.post("/login/second-factor", &[("code", &code)]);
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with(CALLBACK));

    // The same code in a new sign-in: "wait for a new code".
    let b = f.begin(&http, "");
    b.post(
        "/login",
        &[("email", "app@example.org"), ("password", PASSWORD)],
    );
    let replay = b.post("/login/second-factor", &[("code", &code)]);
    assert_eq!(replay.status(), 200);
    let page = replay.text().expect("html");
    assert!(page.contains("Attendez qu’un nouveau code"), "{page}");
    assert_eq!(
        f.audit_count("signin.second_factor_failed", Some("totp-replayed")),
        1
    );
}

fn a_new_email_code_replaces_the_previous_one(f: &Fixture) {
    let email = "courriel@example.org";
    f.add_user(email, Some(PASSWORD), MfaSetting::Email);
    let http = http();
    let b = f.begin(&http, "&ui_locales=en");
    let before = outbox_count(f.dir.path());
    let r = b.post("/login", &[("email", email), ("password", PASSWORD)]);
    assert_eq!(
        location(&r),
        "/login",
        "the page itself says a code was sent"
    );
    assert_eq!(outbox_count(f.dir.path()), before + 1);
    let first = latest_code(f.dir.path(), email);
    let (_, page) = b.get("/login");
    assert!(
        !page.contains("previous code"),
        "no previous code to speak of"
    );
    assert!(page.contains("We sent a six-digit verification code to courriel@example.org"));
    assert!(page.contains("Send a new code"));
    assert!(page.contains("spam"), "help for a code that did not arrive");

    // Random codes may repeat (one chance in a million): ask again until they differ.
    let mut second = first.clone();
    for sent in 2..=4 {
        let r = b.post("/login/resend", &[]);
        assert_eq!(r.status(), 303);
        assert_eq!(outbox_count(f.dir.path()), before + sent);
        second = latest_code(f.dir.path(), email);
        if second != first {
            break;
        }
    }
    assert_ne!(first, second);
    let old = b.post("/login/second-factor", &[("code", &first)]);
    let old = old.text().expect("html");
    assert!(old.contains("replaced by a newer one"), "{old}");
    let r = b.post("/login/second-factor", &[("code", &second)]);
    assert_eq!(r.status(), 303);
    let claims = tokens(f, &http, &location(&r));
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // The mail went out in the person's language, and the code is stored only hashed.
    let outbox = mail_worker::Outbox::open(f.dir.path().join("data/outbox")).expect("outbox");
    let last = outbox.messages().expect("messages").pop().expect("mail");
    assert_eq!(last.locale, mail_queue::Locale::En);
    let mut conn = f.store.connection().expect("conn");
    let user_id = users::find_by_email(&mut conn, email)
        .expect("q")
        .expect("user")
        .id;
    let stored = idp::store::one_time_codes::latest(&mut conn, &user_id, "signin")
        .expect("q")
        .expect("code");
    assert!(!String::from_utf8_lossy(&stored.code_hash).contains(&second));
    assert_ne!(stored.code_hash, second.as_bytes());
}

fn the_fifth_wrong_password_locks_and_the_reset_unlocks(f: &Fixture) {
    let email = "verrou@example.org";
    f.add_user(email, Some(PASSWORD), MfaSetting::Email);
    let http = http();
    let b = f.begin(&http, "");
    for attempt in 1..=5 {
        let r = b.post(
            "/login",
            &[("email", email), ("password", "Wrong-Password-1")],
        );
        assert_eq!(r.status(), 200);
        let page = r.text().expect("html");
        if attempt < 5 {
            assert!(
                page.contains("Courriel ou mot de passe incorrect"),
                "{attempt}"
            );
        } else {
            assert!(page.contains("Trop de tentatives"), "locked at the fifth");
        }
    }
    // The sixth attempt, even with the right password, is refused without being checked.
    let r = b.post("/login", &[("email", email), ("password", PASSWORD)]);
    let page = r.text().expect("html");
    assert!(page.contains("temporairement verrouillé"), "{page}");
    assert!(page.contains("Première connexion ou mot de passe oublié?"));
    assert_eq!(f.audit_count("account.locked", None), 1);
    assert_eq!(f.audit_count("signin.failed", Some("bad_password")), 5);
    assert_eq!(f.audit_count("signin.failed", Some("locked")), 1);

    // The reset journey always unlocks.
    let r = b.post("/login/reset", &[("email", email)]);
    assert_eq!(r.status(), 303);
    // An email-code holder proved the mailbox with the reset code: signed in.
    reset_to_the_portal(&b, &latest_code(f.dir.path(), email));
    assert_eq!(f.audit_count("account.unlocked", None), 1);
    let b = f.begin(&http, "");
    let r = support::journey::password_and_email_code(&b, f.dir.path(), email, NEW_PASSWORD);
    assert!(location(&r).starts_with(CALLBACK));
}

/// Posts every form to `url` with the transaction cookie `tx`, all at once (one thread each,
/// released together); answers their statuses.
fn post_at_once(url: &str, tx: &str, forms: Vec<Vec<(&'static str, String)>>) -> Vec<u16> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(forms.len()));
    let handles: Vec<_> = forms
        .into_iter()
        .map(|form| {
            let (url, tx, barrier) = (url.to_string(), tx.to_string(), barrier.clone());
            std::thread::spawn(move || {
                let client = self::http();
                barrier.wait();
                client
                    .post(url)
                    .header("Cookie", tx)
                    .form(&form)
                    .send()
                    .expect("post")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect()
}

fn fifty_concurrent_guesses_get_at_most_five_checks(f: &Fixture) {
    let email = "rafale@example.org";
    f.add_user(email, Some(PASSWORD), MfaSetting::Email);
    let http = http();
    let b = f.begin(&http, "");
    let csrf = b.csrf();
    let forms = (0..50)
        .map(|i| {
            vec![
                ("csrf", csrf.clone()),
                ("email", email.to_string()),
                ("password", format!("Wrong-Guess-{i}")),
            ]
        })
        .collect();
    for status in post_at_once(&f.server.url("/login"), &b.tx, forms) {
        assert_eq!(status, 200);
    }
    let checked = f.audit_count("signin.failed", Some("bad_password"));
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(
        checked + f.audit_count("signin.failed", Some("locked")),
        50,
        "every guess is recorded"
    );
}

fn fifty_concurrent_code_guesses_get_at_most_five_checks(f: &Fixture) {
    let (_, secret) = f.add_totp_user("rafale-code@example.org");
    let http = http();
    let b = f.begin(&http, "");
    let r = b.post(
        "/login",
        &[("email", "rafale-code@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(r.status(), 303);
    let csrf = b.csrf();
    // Fifty codes none of which the app could show now (the drift window included).
    let now = unix_now();
    let right: Vec<String> = [now - 30, now, now + 30, now + 60]
        .iter()
        .map(|&t| totp_code(&secret, t))
        .collect();
    let guesses: Vec<String> = (0..)
        .map(|i| format!("{:06}", 100_003 + i * 7_919))
        .filter(|c| !right.contains(c))
        .take(50)
        .collect();
    let forms = guesses
        .into_iter()
        .map(|guess| vec![("csrf", csrf.clone()), ("code", guess)])
        .collect();
    for status in post_at_once(&f.server.url("/login/second-factor"), &b.tx, forms) {
        assert_eq!(status, 200);
    }
    let checked = f.audit_count("signin.second_factor_failed", None);
    assert!(checked <= 5, "{checked} codes were checked");
    assert!(checked >= 1, "no code was checked");
    assert_eq!(f.audit_count("account.locked", None), 1);
    // Locked: even the right code is refused now.
    let r = b.post(
        "/login/second-factor",
        &[("code", &totp_code(&secret, unix_now()))],
    );
    assert_eq!(r.status(), 200);
    assert!(r.text().expect("html").contains("Trop de codes incorrects"));
    assert_eq!(f.audit_count("signin.succeeded", None), 0);
}

fn registered_and_unknown_emails_get_the_same_answers(f: &Fixture) {
    f.add_user("connu@example.org", Some(PASSWORD), MfaSetting::Email);
    let http = http();
    let answers: Vec<(u16, String, String, String)> = ["connu@example.org", "inconnu@example.org"]
        .iter()
        .map(|email| {
            let b = f.begin(&http, "");
            let before = outbox_count(f.dir.path());
            let r = b.post("/login/reset", &[("email", email)]);
            let status = r.status().as_u16();
            // The registered address's code is sent in the background; let it land before
            // trying a code, so both answers are judged in the same state.
            if email.starts_with("connu") {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while outbox_count(f.dir.path()) == before {
                    assert!(std::time::Instant::now() < deadline, "no reset code sent");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            let next = location(&r);
            let (_, page) = b.get(&next);
            let wrong = b
                .post("/login/reset/code", &[("code", "000000")])
                .text()
                .expect("html");
            (
                status,
                next,
                page.replace(email, "EMAIL")
                    .replace(&csrf_of(&page), "CSRF"),
                wrong
                    .replace(email, "EMAIL")
                    .replace(&csrf_of(&wrong), "CSRF"),
            )
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 303);
    assert!(answers[0].2.contains("Si EMAIL est l’adresse de contact"));
    assert!(answers[0].3.contains("Il vous reste 4 essais"));
    // The registered address's wrong code is recorded against its account; the unknown
    // address has no one to name, and leaves no row.
    assert_eq!(f.audit_count("reset.code_failed", None), 1);
    assert_eq!(f.audit_count("reset.code_failed", Some("code-wrong")), 1);
}

fn language_follows_ui_locales_then_the_switch_then_the_browser(f: &Fixture) {
    let http = http();
    // The browser's language alone.
    let b = f.begin(&http, "");
    let page = http
        .get(f.server.url("/login"))
        .header("Cookie", &b.tx)
        .header("Accept-Language", "en-CA,en;q=0.9,fr;q=0.5")
        .send()
        .expect("page")
        .text()
        .expect("html");
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(page.contains("First login or forgot your password?"));
    // The portal's ui_locales wins over the browser.
    let b = f.begin(&http, "&ui_locales=fr");
    let page = http
        .get(f.server.url("/login"))
        .header("Cookie", &b.tx)
        .header("Accept-Language", "en")
        .send()
        .expect("page")
        .text()
        .expect("html");
    assert!(page.contains("<html lang=\"fr-CA\">"));
    assert!(page.contains("Mot de passe"));
    assert!(page.contains("href=\"/login/lang?to=en&amp;next=login\""));
    // The switch wins for the rest of the journey and is remembered.
    let r = http
        .get(f.server.url("/login/lang?to=en&next=login"))
        .header("Cookie", &b.tx)
        .send()
        .expect("switch");
    assert_eq!(r.status(), 303);
    let lang = cookie_pair(&r, "guichet_lang").expect("remembered");
    assert_eq!(lang, "guichet_lang=en");
    let (_, page) = b.get("/login");
    assert!(page.contains("<html lang=\"en\">"));
    assert!(page.contains("Email address"));
    // A later journey without ui_locales uses the remembered choice over the browser.
    let b = f.begin(&http, "");
    let page = http
        .get(f.server.url("/login"))
        .header("Cookie", format!("{}; {lang}", b.tx))
        .header("Accept-Language", "fr-CA")
        .send()
        .expect("page")
        .text()
        .expect("html");
    assert!(page.contains("<html lang=\"en\">"));
    // Every page's switch leads somewhere that exists: back to this page, in the other language.
    let r = http
        .get(f.server.url("/login/lang?to=fr&next=consent"))
        .send()
        .expect("switch");
    assert_eq!(location(&r), "/consent");
    assert_eq!(
        cookie_pair(&r, "guichet_lang").as_deref(),
        Some("guichet_lang=fr-CA")
    );
    let r = http
        .get(f.server.url("/login/lang?to=xx&next=elsewhere"))
        .send()
        .expect("switch");
    assert_eq!(
        location(&r),
        "/login",
        "unknown targets go to the sign-in page"
    );
    assert!(
        cookie_pair(&r, "guichet_lang").is_none(),
        "unknown languages are ignored"
    );
}

/// A server whose argon2 cost (2048 KiB) is above the test hashes' (1024 KiB), and whose
/// per-address budget is three failures.
fn start_strict(postgres: bool) -> Fixture {
    start_with(
        postgres,
        &[
            ("GUICHET_SIGN_IN__ARGON2_M_COST_KIB", "2048"),
            ("GUICHET_SIGN_IN__IP_MAX_FAILURES", "3"),
        ],
    )
}

fn a_hash_made_with_older_parameters_is_upgraded_at_sign_in(f: &Fixture) {
    let email = "ancien@example.org";
    let id = f.add_user(email, Some(PASSWORD), MfaSetting::Email);
    let stored = |f: &Fixture| {
        users::find_by_id(&mut f.store.connection().expect("conn"), &id)
            .expect("q")
            .expect("user")
            .password_hash
            .expect("hash")
    };
    assert!(stored(f).contains("m=1024,"), "{}", stored(f));
    let http = http();
    let b = f.begin(&http, "");
    let r = support::journey::password_and_email_code(&b, f.dir.path(), email, PASSWORD);
    assert!(location(&r).starts_with(CALLBACK));
    assert!(
        stored(f).starts_with("$argon2id$v=19$m=2048,t=1,p=1$"),
        "{}",
        stored(f)
    );
    // The upgraded hash still verifies.
    let b = f.begin(&http, "");
    let r = support::journey::password_and_email_code(&b, f.dir.path(), email, PASSWORD);
    assert!(location(&r).starts_with(CALLBACK));
}

fn one_address_cannot_go_on_guessing_across_accounts(f: &Fixture) {
    for name in ["a", "b", "c", "d"] {
        f.add_user(
            &format!("{name}@example.org"),
            Some(PASSWORD),
            MfaSetting::Email,
        );
    }
    let http = http();
    let b = f.begin(&http, "");
    for name in ["a", "b", "c"] {
        let email = format!("{name}@example.org");
        let page = b
            .post(
                "/login",
                &[("email", &email), ("password", "Wrong-Password-1")],
            )
            .text()
            .expect("html");
        assert!(
            page.contains("Courriel ou mot de passe incorrect"),
            "{page}"
        );
    }
    // A fourth account, even with its right password: this address must wait.
    let page = b
        .post(
            "/login",
            &[("email", "d@example.org"), ("password", PASSWORD)],
        )
        .text()
        .expect("html");
    assert!(page.contains("depuis votre réseau"), "{page}");
    assert_eq!(f.audit_count("signin.failed", Some("throttled")), 1);
    assert_eq!(
        f.audit_count("account.locked", None),
        0,
        "no account was locked"
    );
}

/// A server behind a trusted proxy (loopback), so each test browser can come from its own
/// address, with the default 30 s between two codes.
fn start_behind_proxy(postgres: bool) -> Fixture {
    start_with(
        postgres,
        &[
            ("GUICHET_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
            ("GUICHET_SIGN_IN__RESEND_INTERVAL_SECS", "30"),
        ],
    )
}

/// A client whose requests come, through the proxy, from `address`.
fn http_from(address: &str) -> Http {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        reqwest::header::HeaderValue::from_str(address).expect("address"),
    );
    Http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Types the reset `code`, then the new password, and expects to land on the portal (an
/// emailed-code holder proved the mailbox with the code).
fn reset_to_the_portal(browser: &Browser, code: &str) {
    let r = browser.post("/login/reset/code", &[("code", code)]);
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    let r = browser.post(
        "/login/password",
        &[("password", NEW_PASSWORD), ("confirmation", NEW_PASSWORD)],
    );
    assert!(location(&r).starts_with(CALLBACK), "{}", location(&r));
}

/// Waits until the outbox holds `count` mails.
fn wait_for_mails(f: &Fixture, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while outbox_count(f.dir.path()) < count {
        assert!(
            std::time::Instant::now() < deadline,
            "{} mails, not {count}",
            outbox_count(f.dir.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn a_stranger_neither_replaces_nor_spends_someone_elses_reset_code(f: &Fixture) {
    let email = "proprio@example.org";
    f.add_user(email, Some(PASSWORD), MfaSetting::Email);
    let (owner_http, stranger_http) = (http_from("198.51.100.4"), http_from("203.0.113.7"));
    let owner = f.begin(&owner_http, "&ui_locales=en");
    let stranger = f.begin(&stranger_http, "&ui_locales=en");
    let before = outbox_count(f.dir.path());

    assert_eq!(
        owner.post("/login/reset", &[("email", email)]).status(),
        303
    );
    wait_for_mails(f, before + 1);
    let owners_code = latest_code(f.dir.path(), email);
    // Right after, from elsewhere, someone types the same email: that address has its own
    // limits, so the code goes out, and it belongs to that sign-in only.
    assert_eq!(
        stranger.post("/login/reset", &[("email", email)]).status(),
        303
    );
    wait_for_mails(f, before + 2);
    let strangers_code = latest_code(f.dir.path(), email);
    // The stranger's address now waits its own 30 s.
    let page = stranger.post("/login/resend", &[]).text().expect("html");
    assert!(page.contains("seconds"), "{page}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(outbox_count(f.dir.path()), before + 2, "nothing more sent");

    if strangers_code != owners_code {
        // Random codes may repeat (one chance in a million); otherwise the stranger's code
        // means nothing in the owner's sign-in...
        let page = owner
            .post("/login/reset/code", &[("code", &strangers_code)])
            .text()
            .expect("html");
        assert!(page.contains("Incorrect code"), "{page}");
    }
    // ...and the owner's code, older than the stranger's, still works.
    reset_to_the_portal(&owner, &owners_code);
    // The stranger's code was never used by the owner, and is no good to the stranger
    // without the mailbox: it stays what it was, one unused code of another sign-in.
    let mut conn = f.store.connection().expect("conn");
    let user_id = users::find_by_email(&mut conn, email)
        .expect("q")
        .expect("user")
        .id;
    let since = idp::store::now() - chrono::Duration::hours(1);
    let unused =
        idp::store::one_time_codes::unused_issued_since(&mut conn, &user_id, "reset", since)
            .expect("q");
    assert_eq!(unused.len(), 1, "only the stranger's code is unused");
    assert!(unused[0]
        .requested_from
        .as_deref()
        .is_some_and(|k| !k.contains("203.0.113.7")));
}

/// Behind the proxy, with one code per address per hour (so four per mailbox) and no interval.
fn start_behind_proxy_one_code_an_hour(postgres: bool) -> Fixture {
    start_with(
        postgres,
        &[
            ("GUICHET_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
            ("GUICHET_SIGN_IN__RESEND_INTERVAL_SECS", "0"),
            ("GUICHET_SIGN_IN__RESEND_MAX_PER_HOUR", "1"),
        ],
    )
}

fn strangers_from_many_addresses_cannot_hold_off_the_owners_reset_code(f: &Fixture) {
    let email = "assiege@example.org";
    f.add_user(email, Some(PASSWORD), MfaSetting::Email);
    // The owner signed in once in their own browser, which now knows them.
    let home = http_from("198.51.100.4");
    let b = f.begin(&home, "");
    let r = support::journey::password_and_email_code(&b, f.dir.path(), email, PASSWORD);
    assert!(location(&r).starts_with(CALLBACK), "{}", location(&r));
    let known = support::journey::cookie_pair(&r, "guichet_known").expect("known-device cookie");
    let set_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("guichet_known="))
        .expect("set-cookie")
        .to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");

    // Four strangers' addresses spend the mailbox's hour of reset codes...
    let before = outbox_count(f.dir.path());
    for (i, address) in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
        .iter()
        .enumerate()
    {
        let http = http_from(address);
        let stranger = f.begin(&http, "");
        assert_eq!(
            stranger.post("/login/reset", &[("email", email)]).status(),
            303
        );
        wait_for_mails(f, before + i + 1);
    }
    // ...so a fifth address gets nothing, even with a made-up known-device cookie.
    let fifth = http_from("203.0.113.5");
    let mut stranger = f.begin(&fifth, "");
    stranger.tx = format!("{}; guichet_known={}", stranger.tx, "ab".repeat(16));
    assert_eq!(
        stranger.post("/login/reset", &[("email", email)]).status(),
        303
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        outbox_count(f.dir.path()),
        before + 4,
        "the mailbox is full"
    );

    // The owner's own browser, from yet another address (say, on the road), still gets its
    // code, and the reset goes through.
    let road = http_from("198.51.100.77");
    let mut owner = f.begin(&road, "&ui_locales=en");
    owner.tx = format!("{}; {known}", owner.tx);
    assert_eq!(
        owner.post("/login/reset", &[("email", email)]).status(),
        303
    );
    wait_for_mails(f, before + 5);
    reset_to_the_portal(&owner, &latest_code(f.dir.path(), email));
    // The audit log says which code went out past the mailbox's bound, and why.
    let mut conn = f.store.connection().expect("conn");
    let known: Vec<bool> = audit::recent(&mut conn, 1_000)
        .expect("audit")
        .iter()
        .filter(|e| e.event_type == "code.sent")
        .map(|e| {
            serde_json::from_str::<Value>(&e.detail).expect("detail")["known_browser"]
                .as_bool()
                .unwrap_or_else(|| panic!("known_browser in {}", e.detail))
        })
        .collect();
    assert_eq!(
        known.iter().filter(|k| **k).count(),
        1,
        "only the owner's reset code: {known:?}"
    );
    assert_eq!(
        known.len(),
        6,
        "one sign-in code, four strangers', the owner's"
    );
}

mod behind_a_proxy {
    use super::*;
    on_both_backends!(
        start_behind_proxy;
        a_stranger_neither_replaces_nor_spends_someone_elses_reset_code,
    );
}

mod behind_a_proxy_one_code_an_hour {
    use super::*;
    on_both_backends!(
        start_behind_proxy_one_code_an_hour;
        strangers_from_many_addresses_cannot_hold_off_the_owners_reset_code,
    );
}

/// A server whose mail queue is a Redis nobody listens on.
fn start_without_queue(postgres: bool) -> Fixture {
    let port = free_port().to_string();
    let url = format!("redis://127.0.0.1:{port}");
    let key = mail_queue::QueueKey::generate_base64();
    start_with(
        postgres,
        &[
            ("GUICHET_REDIS_URL", &url),
            ("GUICHET_MAIL__QUEUE_KEY", &key),
        ],
    )
}

fn an_unreachable_mail_queue_is_said_and_authenticator_sign_ins_go_on(f: &Fixture) {
    f.add_user("courriel@example.org", Some(PASSWORD), MfaSetting::Email);
    let (_, secret) = f.add_totp_user("app@example.org");
    let http = http();
    let b = f.begin(&http, "");
    let r = b.post(
        "/login",
        &[("email", "courriel@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(location(&r), "/login?notice=code-send-failed");
    let (status, page) = b.get(&location(&r));
    assert_eq!(status, 200);
    assert!(
        page.contains("Nous n’avons pas pu envoyer le code"),
        "{page}"
    );
    assert!(page.contains("Envoyer un nouveau code"));

    let b = f.begin(&http, "");
    b.post(
        "/login",
        &[("email", "app@example.org"), ("password", PASSWORD)],
    );
    let code = totp_code(&secret, unix_now());
    let r = b.post("/login/second-factor", &[("code", &code)]);
    assert!(
        location(&r).starts_with(CALLBACK),
        "authenticator sign-ins go on"
    );
}

on_both_backends!(
    start_without_queue;
    an_unreachable_mail_queue_is_said_and_authenticator_sign_ins_go_on,
);

fn start_dev(postgres: bool) -> Fixture {
    start_with(postgres, &[("GUICHET_DEV_MODE", "true")])
}

fn the_development_outbox_shows_codes_only_in_dev_mode(f: &Fixture) {
    f.add_user("dev@example.org", Some(PASSWORD), MfaSetting::Email);
    let http = http();
    let b = f.begin(&http, "");
    b.post(
        "/login",
        &[("email", "dev@example.org"), ("password", PASSWORD)],
    );
    let code = latest_code(f.dir.path(), "dev@example.org");
    let page = http
        .get(f.server.url("/dev/outbox"))
        .send()
        .expect("outbox")
        .text()
        .expect("html");
    assert!(page.contains("id=\"dev-banner\""), "{page}");
    assert!(page.contains("Development mode"));
    assert!(page.contains(&code), "the code is readable");
    assert!(page.contains("Votre code de vérification"));
}

fn the_development_outbox_is_absent_otherwise(f: &Fixture) {
    let r = http()
        .get(f.server.url("/dev/outbox"))
        .send()
        .expect("outbox");
    assert_eq!(r.status(), 404);
}

mod dev {
    use super::*;
    on_both_backends!(
        start_dev;
        the_development_outbox_shows_codes_only_in_dev_mode,
    );
}

fn a_refused_request_is_explained_in_the_persons_language(f: &Fixture) {
    let http = http();
    let url = f
        .server
        .url("/authorize?client_id=inconnu&response_type=code");
    let fr = http.get(&url).send().expect("authorize");
    assert_eq!(fr.status(), 400);
    let fr = fr.text().expect("html");
    assert!(
        fr.contains("Le portail qui vous a dirigé ici n’est pas inscrit."),
        "{fr}"
    );
    assert!(fr.contains("Retournez au portail"), "what to do next");
    let en = http
        .get(&url)
        .header("Accept-Language", "en")
        .send()
        .expect("authorize")
        .text()
        .expect("html");
    assert!(
        en.contains("The portal that sent you here is not registered."),
        "{en}"
    );
    let repeated = http
        .get(f.server.url("/authorize?client_id=a&client_id=b"))
        .send()
        .expect("authorize")
        .text()
        .expect("html");
    assert!(
        repeated.contains("Un paramètre de la demande est répété."),
        "{repeated}"
    );
}

mod production {
    use super::*;
    on_both_backends!(
        start;
        the_development_outbox_is_absent_otherwise,
        a_refused_request_is_explained_in_the_persons_language,
    );
}

mod strict {
    use super::*;
    on_both_backends!(
        start_strict;
        a_hash_made_with_older_parameters_is_upgraded_at_sign_in,
        one_address_cannot_go_on_guessing_across_accounts,
    );
}

mod default_settings {
    use super::*;
    on_both_backends!(
        start;
        imported_member_first_login_through_to_tokens,
        authenticator_sign_in_refuses_a_replayed_code,
        a_new_email_code_replaces_the_previous_one,
        the_fifth_wrong_password_locks_and_the_reset_unlocks,
        fifty_concurrent_guesses_get_at_most_five_checks,
        fifty_concurrent_code_guesses_get_at_most_five_checks,
        registered_and_unknown_emails_get_the_same_answers,
        language_follows_ui_locales_then_the_switch_then_the_browser,
    );
}
