//! The mail worker: reads sealed jobs from the Redis stream as one of a consumer group,
//! composes them ([`compose`]) and sends them over SMTP ([`smtp`]), acknowledging a job only
//! once the SMTP server accepted it ([`consumer`]). The embedded default delivers in-process
//! to a development outbox instead ([`outbox`]).

pub mod compose;
pub mod consumer;
pub mod metrics;
pub mod outbox;
pub mod settings;
pub mod smtp;

pub use outbox::{DeliveryError, Outbox};
