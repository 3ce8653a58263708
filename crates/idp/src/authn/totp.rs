//! Authenticator apps (RFC 6238): HMAC-SHA-1, six digits, 30-second steps, one step of drift
//! either way. Each code is accepted once: the step of the last accepted code is stored and a
//! code whose step is not newer is refused ("wait for a new code").

use qrcode::render::svg;
use qrcode::QrCode;
use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

/// Length of a new secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Steps of drift accepted on each side of the current one.
const SKEW: u64 = 1;

/// Seals a person's secret with the master key, bound to them so it cannot be moved to
/// another account's row.
pub fn seal_secret(
    key: &crate::crypto::MasterKey,
    user_id: &str,
    secret: &[u8],
) -> Result<Vec<u8>, crate::crypto::CryptoError> {
    key.seal(secret, format!("totp:{user_id}").as_bytes())
}

/// Opens what [`seal_secret`] sealed for `user_id`.
pub fn open_secret(
    key: &crate::crypto::MasterKey,
    user_id: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, crate::crypto::CryptoError> {
    key.open(sealed, format!("totp:{user_id}").as_bytes())
}

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// What the enrolment page shows: a QR code, the same as a link, and the key to type by hand.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`
    pub url: String,
    /// The QR code of `url`, an inline `<svg>` element.
    pub qr_svg: String,
    /// The base32 key in groups of four characters.
    pub grouped_key: String,
}

/// How a submitted code compares with the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// Valid and newer than any accepted before: remember this step.
    Accepted(i64),
    /// Valid, but its step was already used (or an older one): wait for a new code.
    Replayed,
    /// Not a code of this secret around now.
    Wrong,
}

/// An authenticator account: the issuer name shown in the app and the secret.
pub struct Authenticator {
    totp: TOTP,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The account `account` (the person's email) at `issuer`, with `secret`.
    pub fn new(issuer: &str, account: &str, secret: Vec<u8>) -> Self {
        // `new_unchecked`: the secret is ours (20 bytes), and a `:` in the label is encoded by
        // `get_url`; the issuer was checked at start-up.
        let totp = TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECS,
            secret,
            Some(issuer.to_string()),
            account.to_string(),
        );
        Self { totp }
    }

    /// The enrolment material for this account.
    pub fn enrolment(&self) -> Enrolment {
        let url = self.totp.get_url();
        let qr_svg = QrCode::new(url.as_bytes())
            .map(|code| {
                code.render::<svg::Color>()
                    .min_dimensions(220, 220)
                    .quiet_zone(true)
                    .build()
            })
            .map(|svg| inline_svg(&svg))
            .unwrap_or_default();
        let key = self.totp.get_secret_base32();
        let grouped_key = key
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Enrolment {
            url,
            qr_svg,
            grouped_key,
        }
    }

    /// The code of the step containing `unix_time` (for tests and tools).
    pub fn code_at(&self, unix_time: u64) -> String {
        self.totp.generate(unix_time)
    }

    /// Checks `code` at `unix_time` against the last accepted step.
    pub fn check(&self, code: &str, unix_time: u64, last_step: Option<i64>) -> TotpCheck {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return TotpCheck::Wrong;
        }
        let current = unix_time / STEP_SECS;
        // Every candidate step is computed and compared in constant time, newest first, so the
        // time taken does not say which step matched.
        let mut matched = None;
        for step in (current.saturating_sub(SKEW)..=current + SKEW).rev() {
            let expected = self.totp.generate(step * STEP_SECS);
            let equal = aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                code.as_bytes(),
            )
            .is_ok();
            if equal && matched.is_none() {
                matched = Some(step);
            }
        }
        match matched.and_then(|s| i64::try_from(s).ok()) {
            None => TotpCheck::Wrong,
            Some(step) if last_step.is_some_and(|last| step <= last) => TotpCheck::Replayed,
            Some(step) => TotpCheck::Accepted(step),
        }
    }
}

/// The SVG element alone: the XML declaration has no place inside an HTML page.
fn inline_svg(document: &str) -> String {
    let start = document.find("<svg").unwrap_or(0);
    document[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-labelledby=\"qr-title\" class=\"qr\" ",
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed.
    fn rfc_account() -> Authenticator {
        Authenticator::new("Guichet", "a@example.org", b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_the_rfc_6238_vectors() {
        let a = rfc_account();
        // Appendix B gives 8 digits; six digits are their last six.
        assert_eq!(a.code_at(59), "287082");
        assert_eq!(a.code_at(1_111_111_109), "081804");
        assert_eq!(a.code_at(1_234_567_890), "005924");
        assert_eq!(a.code_at(2_000_000_000), "279037");
    }

    #[test]
    fn one_step_of_drift_is_accepted_each_way() {
        let a = rfc_account();
        let t = 1_234_567_890;
        let step = i64::try_from(t / STEP_SECS).expect("step");
        assert_eq!(a.check(&a.code_at(t), t, None), TotpCheck::Accepted(step));
        assert_eq!(
            a.check(&a.code_at(t - 30), t, None),
            TotpCheck::Accepted(step - 1)
        );
        assert_eq!(
            a.check(&a.code_at(t + 30), t, None),
            TotpCheck::Accepted(step + 1)
        );
        assert_eq!(a.check(&a.code_at(t - 60), t, None), TotpCheck::Wrong);
        assert_eq!(a.check(&a.code_at(t + 60), t, None), TotpCheck::Wrong);
    }

    #[test]
    fn a_code_is_accepted_once() {
        let a = rfc_account();
        let t = 1_234_567_890;
        let code = a.code_at(t);
        let TotpCheck::Accepted(step) = a.check(&code, t, None) else {
            panic!("first use accepted");
        };
        assert_eq!(a.check(&code, t + 5, Some(step)), TotpCheck::Replayed);
        // An older code that is still within the drift is refused once a newer step was used.
        assert_eq!(
            a.check(&a.code_at(t - 30), t, Some(step)),
            TotpCheck::Replayed
        );
        // The next step's code works.
        assert_eq!(
            a.check(&a.code_at(t + 30), t + 30, Some(step)),
            TotpCheck::Accepted(step + 1)
        );
    }

    #[test]
    fn malformed_codes_are_wrong_and_spaces_are_ignored() {
        let a = rfc_account();
        let t = 1_234_567_890;
        assert_eq!(a.check("", t, None), TotpCheck::Wrong);
        assert_eq!(a.check("12345", t, None), TotpCheck::Wrong);
        assert_eq!(a.check("0059240", t, None), TotpCheck::Wrong);
        assert_eq!(a.check("00592a", t, None), TotpCheck::Wrong);
        assert!(matches!(
            a.check("005 924", t, None),
            TotpCheck::Accepted(_)
        ));
    }

    #[test]
    fn enrolment_shows_the_issuer_the_account_and_the_key_in_groups_of_four() {
        let a = Authenticator::new("CPAQCPROD", "marie@example.org", new_secret());
        let e = a.enrolment();
        assert!(
            e.url
                .starts_with("otpauth://totp/CPAQCPROD:marie%40example.org?secret="),
            "{}",
            e.url
        );
        assert!(e.url.contains("issuer=CPAQCPROD"), "{}", e.url);
        assert!(e.qr_svg.starts_with("<svg "), "no XML declaration inline");
        assert!(e.qr_svg.contains("role=\"img\""));
        let groups: Vec<&str> = e.grouped_key.split(' ').collect();
        assert_eq!(groups.len(), 8, "160 bits = 32 base32 characters");
        assert!(groups.iter().all(|g| g.len() == 4));
        let key: String = groups.concat();
        assert!(e.url.contains(&format!("secret={key}")));
    }
}
