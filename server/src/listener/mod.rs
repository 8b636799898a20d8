//! Every listener nesca opens (the public HTTP listener of `nesca serve`, the standalone
//! `nesca ocsp`, the channels' mTLS listener) accepts and serves its connections here, under
//! the limits of `[server]`: a client gets so long to send its request headers, a connection
//! so long to sit idle, a request so long to be answered, and a listener holds so many
//! connections (in all, and per client address). Without them one slow client per file
//! descriptor takes the responder down (slow-loris).
//!
//! HTTP/1.1 only: the header timeout is hyper's HTTP/1 one, and no nesca client speaks HTTP/2
//! (the mTLS listener offers no ALPN), so an HTTP/2 connection would only be a way around it.

mod activity;
mod limiter;
pub(crate) mod mtls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::ServerSection;
use activity::{Activity, Watched};
use limiter::Limiter;

/// The limits of one listener (`[server]`, checked when the configuration is read).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// From a connection's first wait for a request until its headers are complete. Also the
    /// mTLS listener's handshake limit.
    pub header_read: Duration,
    /// No bytes moving and no request in flight for this long: the connection is closed.
    pub idle: Duration,
    /// From the request's headers until its handler answers (its body read included).
    pub request: Duration,
    pub max_connections: u32,
    pub max_connections_per_ip: usize,
}

impl Limits {
    pub(crate) fn of(server: &ServerSection) -> Limits {
        Limits {
            header_read: Duration::from_secs(server.header_read_timeout_seconds),
            idle: Duration::from_secs(server.idle_timeout_seconds),
            request: Duration::from_secs(server.request_timeout_seconds),
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip as usize,
        }
    }
}

/// Plain HTTP: every connection is served `app`, with the client's address as
/// `ConnectInfo<SocketAddr>` (the public lookup's rate limit counts by it).
pub(crate) fn plain(
    app: Router,
) -> impl Fn(TcpStream, SocketAddr) -> std::future::Ready<Option<(TcpStream, Router)>>
       + Clone
       + Send
       + Sync
       + 'static {
    move |tcp, peer| {
        let app = app
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        std::future::ready(Some((tcp, app)))
    }
}

/// Accepts connections on `listener` (named `name` in the log, the configuration key of its
/// address) until `stop` turns true; then stops accepting, lets every connection finish the
/// request it is on, and returns when all are closed. `open` turns an admitted TCP connection
/// into its IO and routes (the TLS handshake of the channels), or `None` to drop it; it runs
/// on the connection's own task, holding the connection's place.
pub(crate) async fn serve<H, F, I>(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    open: H,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(TcpStream, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Option<(I, Router)>> + Send + 'static,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limiter = Limiter::new(limits.max_connections, limits.max_connections_per_ip);
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to come back.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Full: the connection is dropped (closed) before a byte of it is read.
        let Ok(slot) = limiter.admit(name, peer.ip()) else {
            continue;
        };
        let (open, builder, limits, stop) =
            (open.clone(), builder.clone(), limits.clone(), stop.clone());
        tokio::spawn(async move {
            if let Some((io, app)) = open(tcp, peer).await {
                connection(&builder, &limits, io, app, peer, stop).await;
            }
            drop(slot);
        });
    }
    drop(listener);
    let open = limiter.open();
    if open > 0 {
        tracing::info!(
            listener = name,
            open,
            "stopped accepting; waiting for open connections"
        );
    }
    limiter.drained().await;
}

/// Resolves once `stop` is true (or its sender is gone). The value is not kept: a held
/// `watch::Ref` would make the listener's future unsendable.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// What the request-timeout layer of one connection needs.
#[derive(Clone)]
struct PerConnection {
    activity: Arc<Activity>,
    request: Duration,
}

/// Serves one connection until it ends, is idle for the idle timeout, or — once `stop`
/// turns true — has finished its request in flight.
async fn connection<I>(
    builder: &Builder<TokioExecutor>,
    limits: &Limits,
    io: I,
    app: Router,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    // Outside the routes' own layers (metrics among them): a request cut off by the timeout
    // is answered here and logged, not counted by route. A wrapper around the routes, not a
    // layer added to them: the router is not rebuilt for every connection.
    let app = Bounded {
        app,
        per: PerConnection {
            activity: activity.clone(),
            request: limits.request,
        },
    };
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let conn = builder.serve_connection(io, hyper_util::service::TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                // A client gone, or the header timeout (hyper's "read header from client
                // timeout"): nothing to answer.
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            () = stopped(&mut stop), if !draining => {
                // Finishes the request in flight (if any), then closes; the caller's grace
                // bounds how long that may take.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = activity.idle_for(limits.idle), if !draining => {
                // Nothing in flight and nothing moving: dropping the connection closes it.
                tracing::debug!(%peer, "idle connection closed");
                return;
            }
        }
    }
}

/// A connection's routes: each request counted as in flight and answered 503 when its
/// handler takes longer than the request timeout.
#[derive(Clone)]
struct Bounded {
    app: Router,
    per: PerConnection,
}

impl<B> tower_service::Service<axum::http::Request<B>> for Bounded
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // The router is always ready.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let (mut app, c) = (self.app.clone(), self.per.clone());
        Box::pin(async move {
            let _in_flight = c.activity.request();
            // A clone of the URI shares its bytes: no allocation per request.
            let target = req.uri().clone();
            match tokio::time::timeout(c.request, app.call(req)).await {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::warn!(path = %target.path(), "request timed out (server.request_timeout_seconds)");
                    Ok(timed_out(c.request))
                }
            }
        })
    }
}

/// The answer to a request cut off by the timeout: JSON as the server's other refusals, and
/// the connection closed after it (its request body may be half read).
fn timed_out(limit: Duration) -> Response {
    let body = serde_json::json!({
        "error": format!("the request was not answered within {} s; try again", limit.as_secs())
    })
    .to_string();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONNECTION, "close"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `serve` on 127.0.0.1 with a handler that never answers in time; the stop sender and
    /// the server's task.
    async fn slow_server(
        limits: Limits,
    ) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        );
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve("test", listener, limits, plain(app), stopped));
        (addr, stop, task)
    }

    fn limits() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            request: Duration::from_millis(300),
            max_connections: 8,
            max_connections_per_ip: 8,
        }
    }

    #[test]
    fn a_slow_handler_is_answered_503_and_a_stop_drains() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (addr, stop, task) = slow_server(limits()).await;
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut raw = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
                .await
                .expect("answered and closed well before the handler's 60 s")
                .unwrap();
            let text = String::from_utf8_lossy(&raw);
            assert!(text.starts_with("HTTP/1.1 503"), "{text}");
            assert!(text.contains("{\"error\":"), "{text}");
            // Stop: nothing open, so the listener returns at once.
            stop.send(true).unwrap();
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("serve returns once stopped and drained")
                .unwrap();
        });
    }

    #[test]
    fn a_timed_out_request_gets_json_and_a_closed_connection() {
        let r = timed_out(Duration::from_secs(30));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[header::CONNECTION], "close");
    }
}
