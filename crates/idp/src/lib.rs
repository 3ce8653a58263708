//! Guichet, an OpenID Connect identity provider.
//!
//! The binary (`main.rs`) is a thin command line over this library: [`app`] builds the HTTP
//! server from [`config::Settings`], [`store`] holds every piece of shared state.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod authn;
pub mod batch;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod i18n;
pub mod mail;
pub mod oidc;
pub mod staff;
pub mod store;
pub mod telemetry;
pub mod web;
