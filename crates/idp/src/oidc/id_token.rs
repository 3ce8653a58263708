//! ID token claims (OpenID Connect Core 2 and 5.4).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::oidc::keys::SigningAlg;
use crate::store::authorization_codes::AuthorizationCodeRecord;
use crate::store::users::User;

/// `at_hash`: the left half of the hash of the access token, with the hash of the signing
/// algorithm (SHA-256 for RS256 and ES256, SHA-512 for Ed25519).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let (algorithm, half) = match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => (&aws_lc_rs::digest::SHA256, 16),
        SigningAlg::EdDsa => (&aws_lc_rs::digest::SHA512, 32),
    };
    let digest = aws_lc_rs::digest::digest(algorithm, access_token.as_bytes());
    B64URL.encode(&digest.as_ref()[..half])
}

/// The claims of an ID token for `user`, from what the code recorded, filtered by scope.
#[allow(clippy::too_many_arguments)]
pub fn claims(
    issuer: &str,
    client_id: &str,
    user: &User,
    code: &AuthorizationCodeRecord,
    alg: SigningAlg,
    access_token: &str,
    issued_at: i64,
    ttl: i64,
) -> Value {
    let mut c = Map::new();
    c.insert("iss".into(), json!(issuer));
    c.insert("sub".into(), json!(user.id));
    c.insert("aud".into(), json!(client_id));
    c.insert("exp".into(), json!(issued_at + ttl));
    c.insert("iat".into(), json!(issued_at));
    c.insert(
        "auth_time".into(),
        json!(code.auth_time.and_utc().timestamp()),
    );
    if let Some(nonce) = &code.nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    c.insert("acr".into(), json!(code.acr));
    let amr: Vec<&str> = code.amr.split(' ').filter(|s| !s.is_empty()).collect();
    c.insert("amr".into(), json!(amr));
    c.insert("sid".into(), json!(code.session_id));
    c.insert("at_hash".into(), json!(at_hash(alg, access_token)));
    let scopes: Vec<&str> = code.scope.split(' ').collect();
    if scopes.contains(&"email") {
        c.insert("email".into(), json!(user.email));
        c.insert("email_verified".into(), json!(user.email_verified));
    }
    if scopes.contains(&"profile") {
        let name = format!("{} {}", user.given_name, user.family_name);
        c.insert("name".into(), json!(name.trim()));
        c.insert("given_name".into(), json!(user.given_name));
        c.insert("family_name".into(), json!(user.family_name));
        c.insert("locale".into(), json!(user.locale));
        if let Some(member_code) = &user.member_code {
            c.insert("member_code".into(), json!(member_code));
        }
    }
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OpenID Connect Core, appendix A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            at_hash(
                SigningAlg::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::EdDsa, "x").len(), 43);
    }
}
