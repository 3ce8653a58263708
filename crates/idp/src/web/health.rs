//! Liveness and readiness probes for orchestrators and load balancers.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::app::AppState;

/// How long a dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Live {
    status: &'static str,
}

/// `GET /health/live`: the process is up and serving.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Live { status: "ok" })
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    database: &'static str,
    redis: &'static str,
}

/// `GET /health/ready`: the database answers and, when configured, Redis too.
/// Failures are logged with their cause; the answer only says which dependency failed.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "unavailable"
        }
        Err(_) => {
            tracing::warn!("readiness: database check timed out");
            "unavailable"
        }
    };
    let redis = match &state.redis {
        None => "not_configured",
        Some(client) => match tokio::time::timeout(CHECK_TIMEOUT, ping_redis(client)).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: redis check failed");
                "unavailable"
            }
            Err(_) => {
                tracing::warn!("readiness: redis check timed out");
                "unavailable"
            }
        },
    };
    let healthy = database == "ok" && redis != "unavailable";
    let body = Ready {
        status: if healthy { "ready" } else { "not_ready" },
        database,
        redis,
    };
    let mut response = if healthy {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

async fn ping_redis(client: &redis::Client) -> Result<(), String> {
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(format!("unexpected PING answer `{pong}`"))
    }
}
