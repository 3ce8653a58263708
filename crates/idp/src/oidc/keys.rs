//! Token signing keys: generation, sealing at rest, the in-memory ring every instance reloads
//! from the database, the JWKS, and rotation.
//!
//! Parsed key pairs are kept in memory (parsing an RSA key costs more than signing with it).
//! A new key is published in the JWKS at once but signs only after `propagation` has passed,
//! so every instance and every relying party's cache can know it before it appears in a token;
//! a retired key stays published until every token it signed has expired.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey,
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use serde::Serialize;
use serde_json::json;

use crate::crypto::{CryptoError, MasterKey};
use crate::store::signing_keys::{self, SigningKeyRecord};
use crate::store::{DbConnection, StoreError};

/// JWS algorithms Guichet signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: the default every client understands.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    /// Every supported algorithm.
    pub const ALL: [SigningAlg; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses a JOSE name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Key handling failures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation or parsing failed for {0}")]
    Crypto(&'static str),
    #[error("stored signing key {kid} is unusable: {reason}")]
    Stored { kid: String, reason: String },
    #[error(transparent)]
    Seal(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no active signing key for {0}")]
    NoKey(&'static str),
}

enum KeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One private signing key, ready to sign.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 encoding (to be sealed and stored).
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), KeyError> {
        let failed = |_| KeyError::Crypto(alg.as_str());
        let pkcs8: Vec<u8> = match alg {
            SigningAlg::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(failed)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().map_err(failed)?;
                der.as_ref().to_vec()
            }
            SigningAlg::Es256 => {
                let pair =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
                pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()
            }
            SigningAlg::EdDsa => {
                let pair = Ed25519KeyPair::generate().map_err(failed)?;
                pair.to_pkcs8().map_err(failed)?.as_ref().to_vec()
            }
        };
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Parses a PKCS#8 private key; the key id is the RFC 7638 thumbprint of its public key.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, KeyError> {
        let failed = |_| KeyError::Crypto(alg.as_str());
        let pair = match alg {
            SigningAlg::Rs256 => KeyPair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(failed)?),
            SigningAlg::Es256 => KeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(failed)?,
            ),
            SigningAlg::EdDsa => KeyPair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(failed)?),
        };
        let mut key = Self {
            kid: String::new(),
            alg,
            pair,
        };
        key.kid = key.thumbprint()?;
        Ok(key)
    }

    /// Key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The required public members, in the lexicographic order RFC 7638 hashes them in.
    fn public_members(&self) -> Result<BTreeMap<&'static str, String>, KeyError> {
        let mut m = BTreeMap::new();
        match &self.pair {
            KeyPair::Rsa(pair) => {
                let public = pair.public_key();
                let der = public.as_ref();
                let (n, e) =
                    rsa_public_components(der).ok_or(KeyError::Crypto("RS256 public key"))?;
                m.insert("kty", "RSA".to_string());
                m.insert("n", B64URL.encode(n));
                m.insert("e", B64URL.encode(e));
            }
            KeyPair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
                if point.len() != 65 || point[0] != 4 {
                    return Err(KeyError::Crypto("ES256 public key"));
                }
                m.insert("kty", "EC".to_string());
                m.insert("crv", "P-256".to_string());
                m.insert("x", B64URL.encode(&point[1..33]));
                m.insert("y", B64URL.encode(&point[33..65]));
            }
            KeyPair::Ed(pair) => {
                m.insert("kty", "OKP".to_string());
                m.insert("crv", "Ed25519".to_string());
                m.insert("x", B64URL.encode(pair.public_key().as_ref()));
            }
        }
        Ok(m)
    }

    fn thumbprint(&self) -> Result<String, KeyError> {
        let canonical = serde_json::to_string(&self.public_members()?)
            .map_err(|_| KeyError::Crypto("thumbprint"))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        Ok(B64URL.encode(digest.as_ref()))
    }

    /// The public JWK, never with private members.
    pub fn public_jwk(&self) -> Result<serde_json::Value, KeyError> {
        let mut jwk = json!({
            "kid": self.kid,
            "use": "sig",
            "alg": self.alg.as_str(),
        });
        if let Some(obj) = jwk.as_object_mut() {
            for (k, v) in self.public_members()? {
                obj.insert(k.to_string(), serde_json::Value::String(v));
            }
        }
        Ok(jwk)
    }

    /// Signs `claims` as a compact JWS with header `{alg, typ, kid}`.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let header = json!({ "alg": self.alg.as_str(), "typ": typ, "kid": self.kid });
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Crypto("header"))?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Crypto("claims"))?;
        let mut token = String::with_capacity(512);
        B64URL.encode_string(header, &mut token);
        token.push('.');
        B64URL.encode_string(payload, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        B64URL.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.pair {
            KeyPair::Rsa(pair) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref())
                    .verify(message, signature)
                    .is_ok()
            }
            KeyPair::Ec(pair) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
                    .verify(message, signature)
                    .is_ok()
            }
            KeyPair::Ed(pair) => UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
                .verify(message, signature)
                .is_ok(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Crypto(self.alg.as_str());
        match &self.pair {
            KeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
            KeyPair::Ec(pair) => Ok(pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            KeyPair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// Reads `n` and `e` from a DER `RSAPublicKey` (RFC 8017: SEQUENCE { INTEGER n, INTEGER e }),
/// without the sign-padding zero byte of DER integers.
fn rsa_public_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[count..])
        };
        if rest.len() < len {
            return None;
        }
        Some((&rest[..len], &rest[len..]))
    }
    let (sequence, _) = element(der, 0x30)?;
    let (n, rest) = element(sequence, 0x02)?;
    let (e, _) = element(rest, 0x02)?;
    let trim = |int: &[u8]| -> usize { int.iter().take_while(|b| **b == 0).count() };
    Some((&n[trim(n)..], &e[trim(e)..]))
}

fn seal_context(kid: &str) -> Vec<u8> {
    format!("signing_key:{kid}").into_bytes()
}

/// Generates a key and stores it sealed with the master key. Returns the stored record.
pub fn create_key(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    alg: SigningAlg,
    now: NaiveDateTime,
) -> Result<SigningKeyRecord, KeyError> {
    let (key, pkcs8) = SigningKey::generate(alg)?;
    let record = SigningKeyRecord {
        kid: key.kid.clone(),
        alg: alg.as_str().to_string(),
        private_key_enc: master_key.seal(&pkcs8, &seal_context(&key.kid))?,
        public_jwk: key.public_jwk()?.to_string(),
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    signing_keys::insert(conn, &record)?;
    Ok(record)
}

/// Adds a new key for `alg`. The previous keys keep signing for `retire_after` (while the new
/// key propagates), then stay published for `publish_for` more (the longest token lifetime and
/// a margin).
pub fn rotate(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    alg: SigningAlg,
    now: NaiveDateTime,
    retire_after: Duration,
    publish_for: Duration,
) -> Result<SigningKeyRecord, KeyError> {
    let previous: Vec<_> = signing_keys::active(conn)?
        .into_iter()
        .filter(|k| k.alg == alg.as_str())
        .collect();
    let created = create_key(conn, master_key, alg, now)?;
    let retire_at = now + retire_after;
    for old in previous {
        signing_keys::retire(conn, &old.kid, retire_at, retire_at + publish_for)?;
    }
    Ok(created)
}

/// Creates a key for every algorithm that has none active (first start).
pub fn ensure_keys(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    now: NaiveDateTime,
) -> Result<Vec<SigningKeyRecord>, KeyError> {
    let active = signing_keys::active(conn)?;
    let mut created = Vec::new();
    for alg in SigningAlg::ALL {
        if !active.iter().any(|k| k.alg == alg.as_str()) {
            created.push(create_key(conn, master_key, alg, now)?);
        }
    }
    Ok(created)
}

struct RingState {
    /// Per algorithm, the key that signs now.
    signers: BTreeMap<SigningAlg, Arc<SigningKey>>,
    /// Parsed keys by kid, kept across reloads so keys are parsed once.
    parsed: BTreeMap<String, Arc<SigningKey>>,
    /// The JWKS document, serialised once per reload; each answer shares these bytes.
    jwks: bytes::Bytes,
}

/// The keys this instance signs with and publishes, reloaded from the database.
pub struct SigningKeyRing {
    master_key: MasterKey,
    propagation: Duration,
    state: RwLock<Arc<RingState>>,
}

impl std::fmt::Debug for SigningKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRing").finish_non_exhaustive()
    }
}

impl SigningKeyRing {
    /// Loads the ring. `propagation` is how long a new key is published before it signs.
    pub fn load(
        conn: &mut DbConnection,
        master_key: MasterKey,
        propagation: Duration,
        now: NaiveDateTime,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            master_key,
            propagation,
            state: RwLock::new(Arc::new(RingState {
                signers: BTreeMap::new(),
                parsed: BTreeMap::new(),
                jwks: bytes::Bytes::from_static(b"{\"keys\":[]}"),
            })),
        };
        ring.reload(conn, now)?;
        Ok(ring)
    }

    fn current(&self) -> Arc<RingState> {
        match self.state.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys: picks up rotations made by the CLI or another instance.
    pub fn reload(&self, conn: &mut DbConnection, now: NaiveDateTime) -> Result<(), KeyError> {
        let records = signing_keys::publishable(conn, now)?;
        let previous = self.current();
        let mut parsed = BTreeMap::new();
        let mut jwks = Vec::with_capacity(records.len());
        let mut signers: BTreeMap<SigningAlg, (NaiveDateTime, Arc<SigningKey>)> = BTreeMap::new();
        for record in &records {
            let stored = |reason: String| KeyError::Stored {
                kid: record.kid.clone(),
                reason,
            };
            let jwk: serde_json::Value =
                serde_json::from_str(&record.public_jwk).map_err(|e| stored(e.to_string()))?;
            jwks.push(jwk);
            let alg = SigningAlg::parse(&record.alg)
                .ok_or_else(|| stored(format!("unknown algorithm {}", record.alg)))?;
            let key = match previous.parsed.get(&record.kid) {
                Some(key) => key.clone(),
                None => {
                    let der = self
                        .master_key
                        .open(&record.private_key_enc, &seal_context(&record.kid))
                        .map_err(|e| stored(e.to_string()))?;
                    let key =
                        SigningKey::from_pkcs8(alg, &der).map_err(|e| stored(e.to_string()))?;
                    if key.kid != record.kid {
                        return Err(stored("key id does not match its public key".into()));
                    }
                    Arc::new(key)
                }
            };
            parsed.insert(record.kid.clone(), key.clone());
            // Retired keys still verify the tokens they signed; they no longer sign.
            if record.retired_at.is_some_and(|retired| retired <= now) {
                continue;
            }
            // Prefer the newest key already propagated; a key newer than that signs only when
            // no propagated key exists (first start).
            let propagated = record.created_at <= now - self.propagation;
            let better = match signers.get(&alg) {
                None => true,
                Some((created, current)) => {
                    let current_propagated = *created <= now - self.propagation;
                    match (propagated, current_propagated) {
                        (true, false) => true,
                        (false, true) => false,
                        _ => {
                            record.created_at > *created
                                || (record.created_at == *created && key.kid > current.kid)
                        }
                    }
                }
            };
            if better {
                signers.insert(alg, (record.created_at, key));
            }
        }
        let jwks = serde_json::to_string(&json!({ "keys": jwks }))
            .map_err(|_| KeyError::Crypto("jwks"))?;
        let next = Arc::new(RingState {
            signers: signers
                .into_iter()
                .map(|(alg, (_, key))| (alg, key))
                .collect(),
            parsed,
            jwks: bytes::Bytes::from(jwks),
        });
        match self.state.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// The key that signs `alg` tokens now.
    pub fn signer(&self, alg: SigningAlg) -> Result<Arc<SigningKey>, KeyError> {
        self.current()
            .signers
            .get(&alg)
            .cloned()
            .ok_or(KeyError::NoKey(alg.as_str()))
    }

    /// Verifies a compact JWS signed by one of the published keys and returns its header and
    /// payload. The header's `alg` must be the key's own (no algorithm confusion).
    pub fn verify_jwt(&self, token: &str) -> Option<(serde_json::Value, serde_json::Value)> {
        let mut parts = token.split('.');
        let (header_b64, payload_b64, signature_b64) =
            (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(header_b64).ok()?).ok()?;
        let kid = header.get("kid")?.as_str()?;
        let state = self.current();
        let key = state.parsed.get(kid)?;
        if header.get("alg")?.as_str()? != key.alg.as_str() {
            return None;
        }
        let signature = B64URL.decode(signature_b64).ok()?;
        let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(signed.as_bytes(), &signature) {
            return None;
        }
        let payload = serde_json::from_slice(&B64URL.decode(payload_b64).ok()?).ok()?;
        Some((header, payload))
    }

    /// Whether the key `kid` is published (so signatures by it can be checked).
    pub fn publishes(&self, kid: &str) -> bool {
        self.current().parsed.contains_key(kid)
    }

    /// The JWKS document (public keys only), as JSON text.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.current().jwks.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_verifiable_tokens() {
        for alg in SigningAlg::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).expect("generate");
            let again = SigningKey::from_pkcs8(alg, &pkcs8).expect("parse");
            assert_eq!(again.kid(), key.kid(), "kid is the thumbprint");
            let jwk = key.public_jwk().expect("jwk");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(jwk.get(private).is_none(), "{alg:?} JWK leaks {private}");
            }
            let token = key
                .sign_jwt("JWT", &json!({"sub": "u1", "exp": 4_000_000_000u64}))
                .expect("sign");
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).expect("jwk parses");
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
            let jalg = match alg {
                SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
                SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
                SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            };
            let mut validation = jsonwebtoken::Validation::new(jalg);
            validation.validate_aud = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(data.claims["sub"], "u1");
            assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
            // A flipped byte in the signature fails verification.
            let mut bad = token.clone().into_bytes();
            let last = bad.len() - 2;
            bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).expect("ascii");
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&bad, &decoding, &validation).is_err()
            );
        }
    }

    #[test]
    fn own_signatures_verify_and_forgeries_do_not() {
        for alg in SigningAlg::ALL {
            let (key, _) = SigningKey::generate(alg).expect("generate");
            let token = key.sign_jwt("at+jwt", &json!({"sub": "u"})).expect("sign");
            let (signed, signature) = token.rsplit_once('.').expect("three parts");
            let signature = B64URL.decode(signature).expect("b64");
            assert!(key.verify(signed.as_bytes(), &signature), "{alg:?}");
            assert!(!key.verify(b"other message", &signature), "{alg:?}");
        }
    }

    #[test]
    fn rsa_keys_are_2048_bits() {
        let (key, _) = SigningKey::generate(SigningAlg::Rs256).expect("generate");
        let jwk = key.public_jwk().expect("jwk");
        let n = B64URL.decode(jwk["n"].as_str().expect("n")).expect("b64");
        assert_eq!(n.len(), 256);
        assert_eq!(jwk["e"], "AQAB");
    }

    #[test]
    fn alg_names() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()), Some(alg));
        }
        assert_eq!(SigningAlg::parse("none"), None);
        assert_eq!(SigningAlg::parse("HS256"), None);
    }
}
