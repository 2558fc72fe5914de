//! Prometheus: one recorder for the process, the request counts both servers keep, and the
//! router of the listener that serves them apart from the public one.

use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often the recorder folds the timings it holds into its summaries.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's recorder, installed at the first call. In `connect dev` both servers share
/// it, and so do the many servers of a test process.
///
/// A recorder built by hand keeps every timing sample until someone renders `/metrics`; with
/// nobody scraping, the server grew by some 18 bytes a request (24 MB over a benchmark's
/// discovery figure). A thread of its own folds them in every few seconds, as the exporter's
/// own installer would.
pub fn handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread: samples wait for a scrape");
            }
            handle
        })
        .clone()
}

/// `/metrics` alone: request counts per route and client are the operator's, not the
/// internet's, so this router gets a listener of its own (loopback by default).
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(handle)
}

async fn render(State(handle): State<PrometheusHandle>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Counts and times every request by matched route (the route, never the path: paths carry
/// enrolment transaction ids), labelled with the server (`idp` or `portal`), which share one
/// recorder in `connect dev`.
pub(super) async fn count_requests(
    State(server): State<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("connect_http_requests_total", "server" => server, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("connect_http_request_seconds", "server" => server, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}
