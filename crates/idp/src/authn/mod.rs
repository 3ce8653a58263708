//! Authentication of people: passwords (this version); second factors and journeys follow.

pub mod password;
