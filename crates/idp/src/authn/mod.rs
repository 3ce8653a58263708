//! Authentication of people: passwords and their policy, second factors (authenticator apps,
//! emailed codes), lockout, and the sign-in journey that puts them together.

pub mod email_code;
pub mod journey;
pub mod known_device;
pub mod lockout;
pub mod password;
pub mod policy;
pub mod sign_in_policy;
pub mod totp;
/// Whether `email` looks like an address mail can reach: something, `@`, a dotted domain, no
/// spaces, at most 254 characters.
pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}
