#![allow(dead_code)] // shared by the load generators; each uses a part
//! A full sign-in as a browser without JavaScript does it, for the load generators: authorize,
//! the password page, the password, the code page, the second factor's code (from an
//! authenticator, or from the mail the password step sent).

use std::path::Path;
use std::time::Duration;

use reqwest::Client;

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const CALLBACK: &str = "http://localhost:9000/callback";

/// The `name=value` of a Set-Cookie header.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// The portal's authorization request.
pub fn authorize_url(base: &str, client_id: &str) -> String {
    format!(
        "{base}/authorize?client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback\
         &response_type=code&scope=openid+email&code_challenge={CHALLENGE}\
         &code_challenge_method=S256"
    )
}

/// The `code` parameter of a redirect to the portal.
pub fn code_of(location: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The whole sign-in; returns the session cookie and the redirect to the portal, or what went
/// wrong. `second_factor` yields the code once the password is accepted: an authenticator's
/// code at once, or the emailed code when its mail arrives.
pub async fn full_login(
    http: &Client,
    base: &str,
    client_id: &str,
    email: &str,
    password: &str,
    second_factor: impl std::future::Future<Output = Result<String, String>>,
) -> Result<(String, String), String> {
    let r = http
        .get(authorize_url(base, client_id))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let tx = set_cookie(&r, "guichet_tx").ok_or("no transaction cookie")?;
    let page = http
        .get(format!("{base}/login"))
        .header("Cookie", &tx)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let start = page.find("name=\"csrf\" value=\"").ok_or("no csrf")? + 19;
    let csrf = page[start..start + page[start..].find('"').ok_or("csrf end")?].to_string();
    let r = http
        .post(format!("{base}/login"))
        .header("Cookie", &tx)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 303 {
        return Err(format!("password: {}", r.status()));
    }
    let code_page = http
        .get(format!("{base}/login"))
        .header("Cookie", &tx)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !code_page.status().is_success() {
        return Err(format!("code page: {}", code_page.status()));
    }
    let code = second_factor.await?;
    let r = http
        .post(format!("{base}/login/second-factor"))
        .header("Cookie", &tx)
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let session =
        set_cookie(&r, "guichet_session").ok_or_else(|| format!("code: {}", r.status()))?;
    Ok((session, location(&r)))
}

/// The server's database and master key, named by `database`: the path of the embedded SQLite
/// file (its master key beside it, in `master.key`), or a `postgres://` URL (the master key in
/// `GUICHET_MASTER_KEY`, as the server was given it).
pub fn server_database(database: &str) -> (idp::store::DatabaseTarget, idp::crypto::MasterKey) {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        let key = std::env::var("GUICHET_MASTER_KEY").expect("GUICHET_MASTER_KEY");
        return (
            idp::store::DatabaseTarget::parse(database).expect("database URL"),
            idp::crypto::MasterKey::from_base64(key.trim()).expect("master key"),
        );
    }
    let sqlite = Path::new(database);
    let dir = sqlite.parent().expect("data dir");
    let text = std::fs::read_to_string(dir.join("master.key")).expect("master.key");
    (
        idp::store::DatabaseTarget::Sqlite(sqlite.to_path_buf()),
        idp::crypto::MasterKey::from_base64(text.trim()).expect("master key"),
    )
}

/// Creates people `emails` with `password_hash` and, as second factor, the authenticator
/// `totp_secret` or, without one, emailed codes; in one transaction.
pub fn seed_people(
    database: &idp::store::DatabaseTarget,
    key: &idp::crypto::MasterKey,
    password_hash: &str,
    totp_secret: Option<&[u8]>,
    emails: &[String],
) {
    use diesel::Connection;
    let store = idp::store::Store::open(
        database.clone(),
        &idp::store::PoolOptions {
            max_size: 1,
            connect_timeout: Duration::from_secs(10),
            sqlite_busy_timeout_ms: 10_000,
        },
    )
    .expect("store");
    let mut conn = store.connection().expect("conn");
    conn.transaction::<_, idp::store::StoreError, _>(|conn| {
        for email in emails {
            let id = uuid::Uuid::new_v4().to_string();
            idp::store::users::insert(
                conn,
                &idp::store::users::NewUser {
                    id: id.clone(),
                    email: email.clone(),
                    member_code: None,
                    given_name: "Bench".into(),
                    family_name: "Person".into(),
                    locale: "fr-CA".into(),
                    password_hash: Some(password_hash.to_string()),
                    must_reset: false,
                },
                idp::store::now(),
            )?;
            let method = match totp_secret {
                Some(secret) => idp::store::users::MfaSetting::Totp(
                    idp::authn::totp::seal_secret(key, &id, secret).expect("seal"),
                ),
                None => idp::store::users::MfaSetting::Email,
            };
            idp::store::users::set_mfa(conn, &id, &method, idp::store::now())?;
        }
        Ok(())
    })
    .expect("seed");
}

/// The authenticator code of `secret` now.
pub fn totp_now(secret: &[u8]) -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    idp::authn::totp::Authenticator::new("Guichet", "bench", secret.to_vec()).code_at(unix)
}

/// Emailed codes read from the development outbox (`data_dir/outbox`) as the server delivers
/// them: a thread reads each new mail once, keeps its code by recipient and deletes the file,
/// so the directory stays small however many people sign in.
#[derive(Clone)]
pub struct OutboxCodes {
    codes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl OutboxCodes {
    /// Starts watching `outbox`.
    pub fn watch(outbox: std::path::PathBuf) -> Self {
        let codes = Self {
            codes: std::sync::Arc::default(),
        };
        let found = codes.clone();
        std::thread::spawn(move || loop {
            for entry in std::fs::read_dir(&outbox).into_iter().flatten().flatten() {
                let path = entry.path();
                // Jobs are written aside and renamed: a `.json` file is whole.
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                if let Ok(job) = mail_queue::MailJob::from_json(&bytes) {
                    if let Some(code) = job.parameters.get("code") {
                        found
                            .codes
                            .lock()
                            .unwrap()
                            .insert(job.recipient.to_lowercase(), code.clone());
                    }
                }
                let _ = std::fs::remove_file(&path);
            }
            std::thread::sleep(Duration::from_millis(2));
        });
        codes
    }

    /// The code mailed to `email`, waited for up to 10 seconds.
    pub async fn code_for(&self, email: &str) -> Result<String, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(code) = self.codes.lock().unwrap().remove(&email.to_lowercase()) {
                return Ok(code);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("no code was mailed to {email}"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
