//! The middleware both servers share, and their health routes: one stack, so that the portal
//! is as observable and as guarded as the IdP.

use std::time::Duration;

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request},
    middleware, Router,
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use super::{
    drain::DrainLayer,
    headers,
    health::{self, Readiness},
    metrics::count_requests,
};

/// How a server's stack differs from the other's.
pub struct StackSettings {
    /// The `server` label of the request metrics: `idp` or `portal`.
    pub server: &'static str,
    /// Whether the public URL is `https` (HSTS).
    pub https: bool,
    pub body_limit: BodyLimit,
    /// The most that is read and thrown away of a refused body (`drain`).
    pub drain_bytes: u64,
    pub read_timeout: Duration,
    /// The stores `/readyz` asks.
    pub readiness: Readiness,
}

/// The largest request body a server reads.
pub enum BodyLimit {
    /// On every route: a longer body is refused (413) before any handler runs.
    Everywhere(usize),
    /// The default of every extractor, which a route may lift to check a larger body itself
    /// (the portal's delivery API, which authenticates the caller before it reads the body).
    Default(usize),
}

/// `/healthz`, `/readyz` and the middleware, innermost first: security headers, body limit,
/// request metrics, panic catcher, request id (set, and returned), one tracing span per request
/// naming the matched route (never the path), and outermost `drain`.
pub fn stack<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    settings: StackSettings,
) -> Router<S> {
    let mut router = router.merge(health::router(settings.readiness));
    for layer in headers::layers(settings.https) {
        router = router.layer(layer);
    }
    router = match settings.body_limit {
        BodyLimit::Everywhere(max) => router
            .layer(DefaultBodyLimit::max(max))
            .layer(RequestBodyLimitLayer::new(max)),
        BodyLimit::Default(max) => router.layer(DefaultBodyLimit::max(max)),
    };
    let server = settings.server;
    router
        .layer(middleware::from_fn_with_state(server, count_requests))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // The route, not the path: paths carry enrolment transaction ids.
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", |p| p.as_str());
            tracing::info_span!("request", server, method = %req.method(), route = %route, request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(DrainLayer::new(settings.drain_bytes, settings.read_timeout))
}
