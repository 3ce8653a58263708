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
    let checkpoint = signed_checkpoint(keys, issuer, index, hash)?;
    Ok(audit::add_checkpoint(conn, &checkpoint)?.then_some(checkpoint))
}

/// A checkpoint of position `index` with hash `hash`, signed now.
fn signed_checkpoint(
    keys: &SigningKeyRing,
    issuer: &str,
    index: i64,
    hash: Vec<u8>,
) -> Result<Checkpoint, Error> {
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
    Ok(Checkpoint {
        chain_index: index,
        row_hash: hash,
        created_at: at,
        signature,
    })
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

/// What an archive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// The last chain position archived.
    pub through: i64,
    pub rows: usize,
    /// SHA-256 of the archive file, hex.
    pub sha256: String,
}

/// Why an archive was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveRefused {
    /// No event before that date.
    Nothing,
    /// The chain is broken: archive nothing until it is looked into.
    Broken(String),
    /// The output file exists or cannot be written.
    File(String),
}

/// Retention: exports every chained event that occurred before `before` to `out` (JSON Lines,
/// a new file), signs a checkpoint at the last of them, then removes them in one transaction
/// that also appends an `audit.archived` event (position, rows, file hash). The remaining chain
/// verifies from that checkpoint. Refused when the chain does not verify first.
pub fn archive(
    conn: &mut DbConnection,
    keys: &SigningKeyRing,
    issuer: &str,
    before: chrono::NaiveDateTime,
    out: &std::path::Path,
) -> Result<Result<Archive, ArchiveRefused>, Error> {
    use std::io::Write;
    let checked = verify(conn, keys, issuer, 5000)?;
    if let Some(broken) = &checked.chain.first_break {
        return Ok(Err(ArchiveRefused::Broken(broken.to_string())));
    }
    let Some(through) =
        audit::last_index_before(conn, before)?.filter(|t| *t > checked.chain.archived)
    else {
        return Ok(Err(ArchiveRefused::Nothing));
    };
    let file_error = |e: std::io::Error| ArchiveRefused::File(format!("{}: {e}", out.display()));
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
    {
        Ok(f) => f,
        Err(e) => return Ok(Err(file_error(e))),
    };
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut after = checked.chain.archived;
    let mut rows = 0usize;
    loop {
        let page = audit::chained_between(conn, after, through, 5000)?;
        let Some(last) = page.last() else { break };
        after = last.chain_index.unwrap_or(through);
        for row in &page {
            let mut line = crate::audit::console::event_json(row).to_string();
            line.push('\n');
            digest.update(line.as_bytes());
            if let Err(e) = file.write_all(line.as_bytes()) {
                return Ok(Err(file_error(e)));
            }
            rows += 1;
        }
    }
    if let Err(e) = file.sync_all() {
        return Ok(Err(file_error(e)));
    }
    let sha256 = crate::crypto::hex(digest.finish().as_ref());
    // The anchor the remaining chain will verify from.
    let anchor = audit::chained_between(conn, through - 1, through, 1)?;
    let Some(anchor_row) = anchor.first() else {
        return Ok(Err(ArchiveRefused::Nothing));
    };
    let hash = anchor_row.row_hash.clone().unwrap_or_default();
    audit::add_checkpoint(conn, &signed_checkpoint(keys, issuer, through, hash)?)?;
    let event = crate::store::audit::NewAuditEvent::by(
        "cli",
        "audit.archived",
        None,
        json!({
            "through": through,
            "rows": rows,
            "sha256": sha256,
            "file": out.file_name().map(|f| f.to_string_lossy().into_owned()),
        }),
    );
    crate::store::write_transaction(conn, |conn| {
        audit::prune_through(conn, through)?;
        audit::append(conn, &event)
    })?;
    Ok(Ok(Archive {
        through,
        rows,
        sha256,
    }))
}
