//! OpenID Connect and OAuth protocol: signing keys, clients, the token endpoint's grants.

pub mod authorize;
pub mod clients;
pub mod error;
pub mod keys;
pub mod token;
