//! Lingering close and a read deadline for request bodies, on both servers.
//!
//! A server that answers before it has read the whole body (413 over the limit, 401 before any
//! body byte, a delivery refused after its metadata part) and then closes the connection
//! leaves unread bytes in its socket; the kernel answers them with a reset, and a client that
//! is still sending sees a broken pipe instead of the answer that explains the refusal. As
//! nginx's lingering close does, the rest of such a body is read and thrown away, up to a bound
//! and until the request's read deadline, before the answer goes out: the client reads it, and
//! the connection may even stay open. The same body wrapper enforces that deadline: a body that
//! has not arrived `read_timeout` after its head ends the request with 408 (slowloris).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, StatusCode, Version},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::HttpError;

/// Wraps every request body of a router: see the module documentation.
#[derive(Clone, Copy, Debug)]
pub struct DrainLayer {
    /// The most that is read and thrown away after an early answer; past it the connection
    /// is closed (and may be reset), as a bound on what a client can make the server read.
    max_drain_bytes: u64,
    read_timeout: Duration,
}

impl DrainLayer {
    pub fn new(max_drain_bytes: u64, read_timeout: Duration) -> DrainLayer {
        DrainLayer {
            max_drain_bytes,
            read_timeout,
        }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = Drain<S>;

    fn layer(&self, inner: S) -> Drain<S> {
        Drain {
            inner,
            limits: *self,
        }
    }
}

#[derive(Clone)]
pub struct Drain<S> {
    inner: S,
    limits: DrainLayer,
}

/// What the body wrapper tells the layer once the handler has answered.
#[derive(Default)]
struct Shared {
    /// The body's unread rest, put here when the handler dropped it before its end.
    rest: Mutex<Option<Body>>,
    /// Whether anyone asked for a body byte (and so hyper sent `100 Continue` if expected).
    polled: AtomicBool,
    timed_out: AtomicBool,
}

impl<S> Service<Request> for Drain<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let limits = self.limits;
        let deadline = Instant::now() + limits.read_timeout;
        // HTTP/2 ends a stream without touching the connection; only HTTP/1 needs the rest read.
        let http1 = req.version() <= Version::HTTP_11;
        // A client that waits for `100 Continue` sends no body until hyper sends it, which it
        // does on the first read: reading then would ask for the very body that is refused.
        let expects_continue = req
            .headers()
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let shared = Arc::new(Shared::default());
        let req = req.map(|body| {
            Body::new(Guarded {
                inner: Some(body),
                shared: shared.clone(),
                deadline,
                sleep: None,
                ended: false,
            })
        });
        // The clone that was driven to readiness serves this call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let Ok(mut res) = inner.call(req).await;
            if shared.timed_out.load(Ordering::Acquire) {
                return Ok(timed_out(limits.read_timeout));
            }
            let rest = shared.rest.lock().ok().and_then(|mut rest| rest.take());
            let Some(rest) = rest else {
                return Ok(res);
            };
            if !http1 || (expects_continue && !shared.polled.load(Ordering::Acquire)) {
                return Ok(res);
            }
            let drained = drain(rest, limits.max_drain_bytes, deadline).await;
            let outcome = if drained { "drained" } else { "cut" };
            metrics::counter!("connect_http_bodies_drained_total", "outcome" => outcome)
                .increment(1);
            if !drained {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(res)
        })
    }
}

/// Reads `body` to its end and throws it away; false when it is longer than `max_bytes`, ends
/// in an error, or is still arriving at `deadline`.
async fn drain(mut body: Body, max_bytes: u64, deadline: Instant) -> bool {
    let mut read: u64 = 0;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len() as u64);
                    if read > max_bytes {
                        return false;
                    }
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

/// 408: the body did not arrive in time. `Connection: close`, since its rest may still come.
fn timed_out(read_timeout: Duration) -> Response {
    let mut res = HttpError::problem(
        StatusCode::REQUEST_TIMEOUT,
        "Request timeout",
        format!(
            "the request body did not arrive within {} seconds",
            read_timeout.as_secs()
        ),
    )
    .into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// The request body as handlers see it: the body from hyper, failing once the read deadline
/// has passed, and handing its unread rest to the layer when dropped early.
struct Guarded {
    inner: Option<Body>,
    shared: Arc<Shared>,
    deadline: Instant,
    /// Made at the first wait only: most bodies arrive with their head.
    sleep: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(body) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.ended {
            return Poll::Ready(None);
        }
        this.shared.polled.store(true, Ordering::Release);
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(other) => {
                // The end, or a broken body: nothing is left to read either way.
                this.ended = true;
                Poll::Ready(other)
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.ended = true;
                    this.shared.timed_out.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
            || self
                .inner
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(body) if !self.ended => body.size_hint(),
            _ => SizeHint::with_exact(0),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if self.ended || http_body::Body::is_end_stream(&body) {
            return;
        }
        if let Ok(mut rest) = self.shared.rest.lock() {
            *rest = Some(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::{routing::post, Router};
    use futures_util::StreamExt;
    use tower::ServiceExt;

    /// A body that sends `chunks` of 1 KiB, then never ends.
    fn stalling_body(chunks: usize) -> Body {
        let parts = futures_util::stream::iter(
            (0..chunks).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024]))),
        )
        .chain(futures_util::stream::pending());
        Body::from_stream(parts)
    }

    fn ignoring_router() -> Router {
        Router::new()
            .route("/", post(|| async { StatusCode::UNAUTHORIZED }))
            .route(
                "/read",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(DrainLayer::new(4096, Duration::from_millis(200)))
    }

    fn post_with(uri: &str, body: Body) -> Request {
        Request::post(uri).body(body).unwrap()
    }

    #[tokio::test]
    async fn an_unread_body_is_drained_before_the_answer() {
        let res = ignoring_router()
            .oneshot(post_with("/", Body::from(vec![b'x'; 3000])))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            res.headers().get(header::CONNECTION).is_none(),
            "fully drained: the connection may stay"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_bound_closes_the_connection() {
        let res = ignoring_router()
            .oneshot(post_with("/", Body::from(vec![b'x'; 10_000])))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_stalled_rest_is_given_up_at_the_deadline() {
        let res = ignoring_router()
            .oneshot(post_with("/", stalling_body(1)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_408() {
        let res = ignoring_router()
            .oneshot(post_with("/read", stalling_body(2)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(res.headers()[header::CONNECTION], "close");
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[tokio::test]
    async fn a_body_read_in_time_is_left_alone() {
        let res = ignoring_router()
            .oneshot(post_with("/read", Body::from(vec![b'x'; 3000])))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"3000");
    }
}
