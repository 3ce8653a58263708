//! Back-Channel Logout 1.0 deliveries: a signed logout token posted to each portal of an ended
//! session that registered a back-channel URI.
//!
//! The notices are queued in the database by the transaction that ends the session
//! (`store::backchannel_deliveries`), so a restart loses none. One task per instance takes
//! the due ones (a lease keeps two instances from posting the same notice at once), signs a
//! token for each on the blocking pool, posts it, and retries with growing pauses. A notice
//! ends delivered or given up, each with its audit event, and never holds up the person.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use crate::app::AppState;
use crate::oidc::keys::SigningAlg;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::backchannel_deliveries::{self, Delivery};
use crate::store::{clients, now};

/// The `events` member of a logout token.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Attempts per notice: the pauses between them double from 1 s up to [`LONGEST_PAUSE_SECS`],
/// so a portal down for most of an hour (a deployment, a restart) still hears of the logout.
const ATTEMPTS: i32 = 15;
/// The longest pause between two attempts.
const LONGEST_PAUSE_SECS: i64 = 600;
/// How long an attempt may take before another instance (or this one, restarted) takes the
/// notice over.
const LEASE_SECS: i64 = 30;
/// How often the queue is read when nothing wakes the task: notices queued by another
/// instance, or due again after a pause.
const POLL: Duration = Duration::from_secs(1);
/// Notices taken per reading of the queue.
const BATCH: i64 = 64;

/// Wakes the delivery task when a transaction that queued notices has committed.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQueue {
    wake: Arc<Notify>,
}

impl DeliveryQueue {
    /// Says that notices were queued; the task reads the queue at once.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The pause after `attempts` failed attempts: 1 s, 2 s, 4 s... up to ten minutes.
fn pause_after(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds((1_i64 << (attempts.clamp(1, 11) - 1)).min(LONGEST_PAUSE_SECS))
}

/// Delivers queued notices for as long as the server runs.
pub async fn run(state: AppState) {
    loop {
        tokio::select! {
            () = state.backchannel.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        let taken = state
            .store
            .run(|conn| {
                let at = now();
                let lease = at + chrono::Duration::seconds(LEASE_SECS);
                backchannel_deliveries::take_due(conn, at, lease, BATCH)
            })
            .await;
        match taken {
            Ok(deliveries) => {
                for delivery in deliveries {
                    tokio::spawn(attempt(state.clone(), delivery));
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the back-channel logout queue"),
        }
    }
}

/// One attempt at `delivery`: sign, post, then record the outcome.
async fn attempt(state: AppState, delivery: Delivery) {
    let client_id = delivery.client_id.clone();
    let portal = state
        .store
        .run(move |conn| clients::find(conn, &client_id))
        .await;
    // The portal as configured now: one removed, disabled or without a back-channel URI since
    // the logout is no longer told.
    let target = match portal {
        Ok(client) => client.filter(|c| c.enabled).and_then(|c| {
            let alg = SigningAlg::parse(&c.id_token_alg).unwrap_or(SigningAlg::Rs256);
            c.backchannel_logout_uri.map(|uri| (uri, alg))
        }),
        Err(e) => {
            // Left leased: tried again once the lease ends.
            tracing::warn!(error = %e, "could not read a back-channel logout's portal");
            return;
        }
    };
    let portal_gone = target.is_none();
    let delivered = match target {
        Some((uri, alg)) => post(&state, &delivery, &uri, alg).await,
        None => false,
    };
    let attempts = delivery.attempts + 1;
    let outcome = if delivered || attempts >= ATTEMPTS || portal_gone {
        finish(&state, delivery, delivered).await
    } else {
        let id = delivery.id.clone();
        state
            .store
            .run(move |conn| {
                backchannel_deliveries::reschedule(
                    conn,
                    &id,
                    attempts,
                    now() + pause_after(attempts),
                )
            })
            .await
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not record a back-channel logout attempt");
    }
}

/// Signs the logout token of `delivery` for the portal (on the blocking pool: an RSA signature
/// takes most of a millisecond) and posts it; true when the portal accepted it.
async fn post(state: &AppState, delivery: &Delivery, uri: &str, alg: SigningAlg) -> bool {
    let (keys, issuer) = (state.keys.clone(), state.settings.issuer());
    let (client_id, user_id, sid) = (
        delivery.client_id.clone(),
        delivery.user_id.clone(),
        delivery.sid.clone(),
    );
    let signed = tokio::task::spawn_blocking(move || {
        let issued_at = chrono::Utc::now().timestamp();
        keys.signer(alg).and_then(|signer| {
            signer.sign_jwt(
                "logout+jwt",
                &json!({
                    "iss": issuer,
                    "aud": client_id,
                    "iat": issued_at,
                    "exp": issued_at + 120,
                    "jti": uuid::Uuid::new_v4().to_string(),
                    "sub": user_id,
                    "sid": sid,
                    "events": { BACKCHANNEL_EVENT: {} },
                }),
            )
        })
    })
    .await;
    let token = match signed {
        Ok(Ok(token)) => token,
        Ok(Err(e)) => {
            tracing::error!(client = %delivery.client_id, error = %e, "back-channel logout token not signed");
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout token not signed");
            return false;
        }
    };
    let sent = state
        .http
        .post(uri)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(client = %delivery.client_id, status = r.status().as_u16(), attempt = delivery.attempts + 1, "back-channel logout refused");
            false
        }
        Err(e) => {
            tracing::warn!(client = %delivery.client_id, error = %e, attempt = delivery.attempts + 1, "back-channel logout failed");
            false
        }
    }
}

/// Removes a notice that was delivered or given up, with its audit event, in one transaction.
async fn finish(
    state: &AppState,
    delivery: Delivery,
    delivered: bool,
) -> crate::store::StoreResult<()> {
    let event = NewAuditEvent {
        id: audit::new_event_id(),
        occurred_at: now(),
        event_type: if delivered {
            "logout.backchannel_sent".into()
        } else {
            "logout.backchannel_failed".into()
        },
        actor: None,
        subject: None,
        client_id: Some(delivery.client_id.clone()),
        ip: None,
        user_agent: None,
        request_id: None,
        detail: json!({ "sid": delivery.sid, "attempts": delivery.attempts + 1 }).to_string(),
    };
    state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| {
                if backchannel_deliveries::remove(conn, &delivery.id)? {
                    audit::append(conn, &event)?;
                }
                Ok(())
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_one_second_to_ten_minutes_over_about_an_hour() {
        let pauses: Vec<i64> = (1..ATTEMPTS)
            .map(|a| pause_after(a).num_seconds())
            .collect();
        assert_eq!(
            pauses,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600, 600]
        );
        let total: i64 = pauses.iter().sum();
        assert!((3_000..=3_600).contains(&total), "{total} s");
    }
}
