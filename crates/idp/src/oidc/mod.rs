//! OpenID Connect and OAuth protocol: authorization requests, the code flow, signing keys,
//! clients, the token endpoint's grants, discovery.

pub mod authorize;
pub mod backchannel;
pub mod clients;
pub mod consent;
pub mod error;
pub mod flow;
pub mod id_token;
pub mod keys;
pub mod logout;
pub mod refresh_spender;
pub mod revocation;
pub mod service;
pub mod token;
pub mod userinfo;
