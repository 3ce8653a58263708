//! Signing key ring on both backends: rotation, publication windows, propagation delay, and
//! refusal of tampered keys.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use chrono::Duration;
use diesel::prelude::*;
use idp::crypto::MasterKey;
use idp::oidc::keys::{ensure_keys, rotate, KeyError, SigningAlg, SigningKeyRing};
use idp::store::now;
use serde_json::{json, Value};
use support::TestDb;

on_both_backends!(
    TestDb::new;
    first_start_creates_one_key_per_algorithm,
    rotated_key_stays_published_until_its_tokens_expire,
    new_key_signs_only_after_propagation,
    tampered_or_foreign_keys_are_refused,
);

/// The ring's JWKS as text.
fn jwks_text(ring: &SigningKeyRing) -> String {
    String::from_utf8(ring.jwks_json().to_vec()).expect("utf-8")
}

fn kids(jwks: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(jwks).expect("jwks json");
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// Verifies `token` against the JWKS the way a relying party does: by `kid`.
fn verify_with_jwks(token: &str, jwks: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(jwks).expect("jwk set");
    let jwk = set
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid published in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("signature verifies")
        .claims
}

fn first_start_creates_one_key_per_algorithm(db: &TestDb) {
    let mut conn = db.conn();
    let master = MasterKey::generate();
    assert_eq!(
        ensure_keys(&mut conn, &master, now())
            .expect("ensure")
            .len(),
        3
    );
    assert!(
        ensure_keys(&mut conn, &master, now())
            .expect("again")
            .is_empty(),
        "idempotent"
    );
    let ring = SigningKeyRing::load(&mut conn, master, Duration::seconds(60), now()).expect("load");
    let jwks: Value = serde_json::from_str(&jwks_text(&ring)).expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "JWKS exposes {private}: {key}");
        }
        assert_eq!(key["use"], "sig");
    }
    for alg in SigningAlg::ALL {
        // On first start the only key signs at once, propagation or not.
        let signer = ring.signer(alg).expect("signer");
        let token = signer
            .sign_jwt("JWT", &json!({"sub": "s", "exp": 4_000_000_000u64}))
            .expect("sign");
        assert_eq!(verify_with_jwks(&token, &jwks_text(&ring))["sub"], "s");
    }
}

fn rotated_key_stays_published_until_its_tokens_expire(db: &TestDb) {
    let mut conn = db.conn();
    let master = MasterKey::generate();
    let t0 = now();
    ensure_keys(&mut conn, &master, t0).expect("ensure");
    let ring = SigningKeyRing::load(&mut conn, master.clone(), Duration::zero(), t0).expect("load");
    let old = ring.signer(SigningAlg::Rs256).expect("signer");
    let before = old
        .sign_jwt("JWT", &json!({"sub": "before", "exp": 4_000_000_000u64}))
        .expect("sign");

    let t1 = t0 + Duration::seconds(1);
    let created = rotate(
        &mut conn,
        &master,
        SigningAlg::Rs256,
        t1,
        Duration::zero(),
        Duration::hours(1),
    )
    .expect("rotate");
    ring.reload(&mut conn, t1).expect("reload");
    let new = ring.signer(SigningAlg::Rs256).expect("signer");
    assert_eq!(new.kid(), created.kid);
    assert_ne!(new.kid(), old.kid());
    assert_eq!(
        ring.signer(SigningAlg::Es256).expect("es").alg(),
        SigningAlg::Es256,
        "other algorithms untouched"
    );

    let published = kids(&jwks_text(&ring));
    assert!(published.contains(&old.kid().to_string()) && published.contains(&created.kid));
    assert_eq!(
        verify_with_jwks(&before, &jwks_text(&ring))["sub"],
        "before",
        "old token still validates"
    );
    let after = new
        .sign_jwt("JWT", &json!({"sub": "after", "exp": 4_000_000_000u64}))
        .expect("sign");
    assert_eq!(
        jsonwebtoken::decode_header(&after)
            .expect("h")
            .kid
            .as_deref(),
        Some(created.kid.as_str())
    );
    assert_eq!(verify_with_jwks(&after, &jwks_text(&ring))["sub"], "after");

    // Once every token the old key signed has expired, it leaves the JWKS.
    ring.reload(&mut conn, t1 + Duration::hours(1) + Duration::seconds(1))
        .expect("reload");
    let published = kids(&jwks_text(&ring));
    assert!(!published.contains(&old.kid().to_string()));
    assert_eq!(published.len(), 3);
}

fn new_key_signs_only_after_propagation(db: &TestDb) {
    let mut conn = db.conn();
    let master = MasterKey::generate();
    let t0 = now() - Duration::minutes(10);
    ensure_keys(&mut conn, &master, t0).expect("ensure");
    let propagation = Duration::seconds(60);
    let ring = SigningKeyRing::load(&mut conn, master.clone(), propagation, t0).expect("load");
    let old = ring
        .signer(SigningAlg::EdDsa)
        .expect("signer")
        .kid()
        .to_string();

    let t1 = t0 + Duration::minutes(5);
    // A second instance rotates; this one reloads 10 s later.
    let created = rotate(
        &mut conn,
        &master,
        SigningAlg::EdDsa,
        t1,
        propagation,
        Duration::hours(1),
    )
    .expect("rotate");
    ring.reload(&mut conn, t1 + Duration::seconds(10))
        .expect("reload");
    assert!(
        kids(&jwks_text(&ring)).contains(&created.kid),
        "published at once"
    );
    assert_eq!(
        ring.signer(SigningAlg::EdDsa).expect("s").kid(),
        old,
        "not signing before propagation"
    );
    ring.reload(&mut conn, t1 + Duration::seconds(61))
        .expect("reload");
    assert_eq!(
        ring.signer(SigningAlg::EdDsa).expect("s").kid(),
        created.kid
    );
}

fn tampered_or_foreign_keys_are_refused(db: &TestDb) {
    let mut conn = db.conn();
    let master = MasterKey::generate();
    ensure_keys(&mut conn, &master, now()).expect("ensure");
    // Another master key cannot open the stored private keys.
    let err = SigningKeyRing::load(&mut conn, MasterKey::generate(), Duration::zero(), now())
        .expect_err("foreign master key refused");
    assert!(matches!(err, KeyError::Stored { .. }), "{err:?}");

    // A sealed key moved to another row is refused: the seal is bound to its kid.
    use idp::store::schema::signing_keys as t;
    let rows: Vec<(String, Vec<u8>)> = t::table
        .select((t::kid, t::private_key_enc))
        .load(&mut *conn)
        .expect("rows");
    diesel::update(t::table.find(&rows[0].0))
        .set(t::private_key_enc.eq(&rows[1].1))
        .execute(&mut *conn)
        .expect("swap");
    let err = SigningKeyRing::load(&mut conn, master, Duration::zero(), now())
        .expect_err("swapped key refused");
    assert!(matches!(err, KeyError::Stored { .. }), "{err:?}");
}
