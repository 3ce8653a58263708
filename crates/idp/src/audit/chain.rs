//! Signed checkpoints of the audit chain and its full verification (`idp audit verify`).
//!
//! A checkpoint is the chain's head (position and hash) signed with a published signing key:
//! rewriting the chain before it, even with every hash recomputed, no longer matches what the
//! checkpoint signed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};

use crate::error::Error;
use crate::oidc::keys::{SigningAlg, SigningKeyRing};
use crate::store::audit::{self, ChainReport, Checkpoint};
use crate::store::{now, DbConnection};

const CHECKPOINT_TYP: &str = "audit-checkpoint+jwt";

/// Signs and stores a checkpoint at the current head; `None` when the chain is empty or the
/// head already has one.
pub fn checkpoint(
    conn: &mut DbConnection,
    keys: &SigningKeyRing,
    issuer: &str,
) -> Result<Option<Checkpoint>, Error> {
    let (index, hash) = audit::head(conn)?;
    if index == 0 {
        return Ok(None);
    }
    let at = now();
    let signature = keys.signer(SigningAlg::Es256)?.sign_jwt(
        CHECKPOINT_TYP,
        &json!({
            "iss": issuer,
            "iat": at.and_utc().timestamp(),
            "chain_index": index,
            "row_hash": B64URL.encode(&hash),
        }),
    )?;
    let checkpoint = Checkpoint {
        chain_index: index,
        row_hash: hash,
        created_at: at,
        signature,
    };
    Ok(audit::add_checkpoint(conn, &checkpoint)?.then_some(checkpoint))
}

/// The whole verification: the chain, then each checkpoint's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub chain: ChainReport,
    /// Checkpoints whose signature was checked against a published key.
    pub signatures_checked: usize,
    /// Checkpoints signed by a key no longer published (their hash was still compared).
    pub signatures_unverifiable: usize,
    /// The first checkpoint whose signature or signed content does not hold.
    pub bad_signature: Option<i64>,
}

impl Verification {
    /// Whether nothing is wrong.
    pub fn intact(&self) -> bool {
        self.chain.first_break.is_none() && self.bad_signature.is_none()
    }
}

/// Verifies the chain (pages of `page` rows) and every checkpoint's signature.
pub fn verify(
    conn: &mut DbConnection,
    keys: &SigningKeyRing,
    issuer: &str,
    page: i64,
) -> Result<Verification, Error> {
    let chain = audit::verify(conn, page)?;
    let mut result = Verification {
        chain,
        signatures_checked: 0,
        signatures_unverifiable: 0,
        bad_signature: None,
    };
    for c in audit::checkpoints(conn)? {
        let known_kid = token_kid(&c.signature).is_some_and(|kid| keys.publishes(&kid));
        if !known_kid {
            result.signatures_unverifiable += 1;
            continue;
        }
        let holds = keys
            .verify_jwt(&c.signature)
            .is_some_and(|(header, claims)| {
                header.get("typ").and_then(Value::as_str) == Some(CHECKPOINT_TYP)
                    && claims.get("iss").and_then(Value::as_str) == Some(issuer)
                    && claims.get("chain_index").and_then(Value::as_i64) == Some(c.chain_index)
                    && claims.get("row_hash").and_then(Value::as_str)
                        == Some(B64URL.encode(&c.row_hash).as_str())
            });
        if !holds {
            result.bad_signature = Some(c.chain_index);
            break;
        }
        result.signatures_checked += 1;
    }
    Ok(result)
}

fn token_kid(token: &str) -> Option<String> {
    let header = B64URL.decode(token.split('.').next()?).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    header.get("kid")?.as_str().map(str::to_string)
}
