//! OpenID Connect protocol pieces: signing keys and the JWKS.

pub mod keys;
