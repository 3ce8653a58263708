//! Cookie names and attributes. On https the `__Host-` prefix pins cookies to this host
//! (Secure, Path=/, no Domain); on plain-http loopback development the same names without the
//! prefix are used, since browsers refuse `__Host-` cookies there.

use actix_web::cookie::{time, Cookie, SameSite};

/// The SSO session cookie.
pub const SESSION: &str = "guichet_session";
/// The login transaction cookie.
pub const TRANSACTION: &str = "guichet_tx";
/// The account page's access token (it is a client of this provider).
pub const ACCOUNT: &str = "guichet_account";
/// The account page's sign-in in progress (sealed state, nonce and PKCE verifier).
pub const ACCOUNT_LOGIN: &str = "guichet_account_login";
/// The email change confirmation form's CSRF binding (a random value).
pub const EMAIL_CHANGE: &str = "guichet_email_change";
/// The people who completed a sign-in in this browser (`authn::known_device`).
pub const KNOWN_DEVICE: &str = "guichet_known";
/// The language chosen with the FR/EN switch.
pub const LANG: &str = "guichet_lang";

/// The name as sent on this deployment.
pub fn name(base: &str, https: bool) -> String {
    if https {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// The value of the cookie `base` that `req` carries, if any.
pub fn value(req: &actix_web::HttpRequest, base: &str, https: bool) -> Option<String> {
    req.cookie(&name(base, https))
        .map(|c| c.value().to_string())
}

/// An HttpOnly, SameSite=Lax cookie, Secure on https.
pub fn build(base: &str, value: String, https: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(name(base, https), value)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age_secs))
        .finish()
}

/// The same cookie, expired.
pub fn removal(base: &str, https: bool) -> Cookie<'static> {
    let mut cookie = build(base, String::new(), https, 0);
    cookie.make_removal();
    cookie
}
