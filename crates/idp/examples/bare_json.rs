//! A bare actix-web JSON handler, the baseline the load benchmarks compare Guichet's
//! discovery and JWKS endpoints with (same framework, same worker count, same machine).
//!
//! `cargo run --release -p idp --example bare_json -- 127.0.0.1:18181`

use actix_web::{web, App, HttpResponse, HttpServer};

async fn hello() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18181".into());
    HttpServer::new(|| App::new().route("/", web::get().to(hello)))
        .bind(addr)?
        .run()
        .await
}
