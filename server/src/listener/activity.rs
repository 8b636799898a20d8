//! When a connection last moved: the socket is wrapped so that every byte read or written
//! marks the time, and requests count themselves while a handler works on them. A connection
//! with no request in flight whose bytes stopped moving for the idle timeout is idle: a
//! keep-alive connection nobody uses, or a client that stopped reading its answer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
// tokio's clock, not std's: the idle wait sleeps on tokio's timer, and tests pause it.
use tokio::time::Instant;

/// What one connection did last.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last byte read or written (or request finished).
    last_ms: AtomicU64,
    /// Requests whose handler has not answered yet.
    in_flight: AtomicUsize,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Counts a request until the guard drops (its handler answered, failed or was cut off).
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// How long the connection has been still, or `None` while a handler works.
    fn still_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.start.elapsed().saturating_sub(last))
    }

    /// Resolves once the connection has been idle for `limit`.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        loop {
            let wait = match self.still_for() {
                Some(still) if still >= limit => return,
                Some(still) => limit - still,
                // A handler is at work (bounded by the request timeout): look again later.
                None => limit,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One request in flight; dropping it ends the request and restarts the idle clock.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's IO, marking [`Activity`] whenever bytes move.
pub(crate) struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    pub(crate) fn new(inner: I, activity: Arc<Activity>) -> Watched<I> {
        Watched { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_still_connection_is_idle_after_the_limit() {
        rt().block_on(async {
            let a = Activity::new();
            let started = Instant::now();
            tokio::time::timeout(
                Duration::from_secs(10),
                a.idle_for(Duration::from_millis(200)),
            )
            .await
            .expect("idle within the limit");
            assert!(started.elapsed() >= Duration::from_millis(200));
        });
    }

    #[test]
    fn a_request_in_flight_keeps_the_connection_from_idling() {
        rt().block_on(async {
            let a = Activity::new();
            let req = a.request();
            let limit = Duration::from_millis(100);
            let idle = tokio::time::timeout(Duration::from_millis(600), a.idle_for(limit));
            assert!(idle.await.is_err(), "idle while a handler works");
            drop(req);
            // Answered: the idle clock starts again from the answer, not from the last byte.
            assert_eq!(a.still_for().map(|d| d < limit), Some(true));
            tokio::time::timeout(Duration::from_secs(10), a.idle_for(limit))
                .await
                .expect("idle once answered");
        });
    }

    #[test]
    fn bytes_moving_mark_the_connection() {
        rt().block_on(async {
            let a = Activity::new();
            let (mut client, server) = tokio::io::duplex(64);
            let mut server = Watched::new(server, a.clone());
            tokio::time::sleep(Duration::from_millis(50)).await;
            let before = a.last_ms.load(Ordering::Relaxed);
            client.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            server.read_exact(&mut byte).await.unwrap();
            let after_read = a.last_ms.load(Ordering::Relaxed);
            assert!(after_read > before, "a read marks the connection");
            tokio::time::sleep(Duration::from_millis(20)).await;
            server.write_all(b"y").await.unwrap();
            assert!(
                a.last_ms.load(Ordering::Relaxed) > after_read,
                "a write marks it"
            );
        });
    }
}
