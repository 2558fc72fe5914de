//! The accept loop of both servers: axum's `serve`, plus a deadline on request heads. axum's
//! own loop gives hyper no timer, and so no header timeout: a client sending one header line a
//! minute would hold a connection and a task for ever (slowloris). The body's deadline is
//! `drain::DrainLayer`'s.

use std::{future::Future, io, net::SocketAddr, pin::pin, time::Duration};

use axum::{body::Body, extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets
/// open requests finish for at most `drain`. Handlers see the peer as
/// `ConnectInfo<SocketAddr>`, as with axum's `serve`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    read_timeout: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Dropping `stop_tx` asks every connection to finish; `done_tx.closed()` waits for them.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let service = TowerToHyperService::new(service);
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    drop(done_rx);
    if tokio::time::timeout(drain, done_tx.closed()).await.is_err() {
        tracing::warn!(
            seconds = drain.as_secs(),
            "requests still open at the end of the shutdown timeout are cut"
        );
    }
    Ok(())
}

/// A listener on `addr`, and the address it got (tests ask for port 0).
pub async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// A server's public listener and, beside it, its metrics listener, until `shutdown` resolves.
pub async fn serve_with_metrics(
    public: (TcpListener, Router),
    metrics: (TcpListener, Router),
    read_timeout: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.cancel();
    });
    let (public, metrics) = tokio::join!(
        serve(
            public.0,
            public.1,
            read_timeout,
            drain,
            stop.clone().cancelled_owned()
        ),
        serve(
            metrics.0,
            metrics.1,
            read_timeout,
            drain,
            stop.cancelled_owned()
        ),
    );
    public.and(metrics)
}

/// Errors of one connection are its own; others (too many open files) pause the loop a moment
/// instead of spinning, as axum's loop does.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
