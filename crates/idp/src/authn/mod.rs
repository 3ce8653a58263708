//! Authentication of people: passwords and their policy, second factors (authenticator apps,
//! emailed codes), lockout, and the sign-in journey that puts them together.

pub mod email_code;
pub mod journey;
pub mod lockout;
pub mod password;
pub mod policy;
pub mod totp;
