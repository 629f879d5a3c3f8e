//! Serving connections, plain or TLS, through one accept loop that keeps
//! every connection bounded in number and in time:
//!
//! - at most `max_connections` open (already fitted below the process's
//!   descriptor limit); one more is answered 503 and closed at once, and
//!   the listener keeps accepting;
//! - a request's headers must arrive within `header_timeout_ms` of its first
//!   byte, a new connection's first request within the same of the accept
//!   (a TLS handshake too): a silent connection is not an idle one;
//! - a kept-alive connection with no request in progress is closed after
//!   `idle_timeout_ms` (a stalled response write counts as idle);
//! - a body must arrive within `body_timeout_ms` (enforced where the body is
//!   read, [`crate::edge::read_body`]).
//!
//! hyper's own header timeout restarts whenever it waits for a request,
//! idle or not, so it cannot tell an idle connection from a slow request;
//! each connection's [`Clock`] does.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::error::{ApiError, Where};
use crate::limits::Limits;

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// How long requests in flight may take to finish on shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Binds `addr` and serves `app` within `limits` until `shutdown`
/// resolves, finishing requests in flight (up to 10 s). Returns the bound
/// address through `bound` (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    limits: Arc<Limits>,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    bound(listener.local_addr()?);
    run(listener, app, limits, None, shutdown).await
}

/// As [`serve`], over TLS (rustls), HTTP/1.1 only.
pub async fn serve_tls(
    addr: SocketAddr,
    app: Router,
    limits: Arc<Limits>,
    tls: &Tls,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("TLS certificate {} / key {}: {e}", tls.cert.display(), tls.key.display()),
        )
    })?;
    let mut server_config = (*config.get_inner()).clone();
    // This server speaks HTTP/1.1 only; offering h2 would strand clients that pick it.
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind(addr).await?;
    bound(listener.local_addr()?);
    run(listener, app, limits, Some(acceptor), shutdown).await
}

async fn run(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // hyper panics on a read buffer under 8 KiB, a semaphore on no permits.
    limits.validate().map_err(std::io::Error::other)?;
    let app = crate::edge::finish(app, limits.clone());
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut last_warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, or a connection gone before it was
                // accepted: not the listener's end. A pause lets closing
                // connections give their descriptors back; said once a minute.
                if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "accept failed; accepting again shortly");
                    last_warned = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refuse(stream, tls.is_none());
            continue;
        };
        let (app, limits, stop, tls) = (app.clone(), limits.clone(), stop_rx.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, app, &limits, stop).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_timeout(), acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => connection(stream, app, &limits, stop).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake not done within the header timeout"),
                },
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, open.acquire_many(all)).await.is_err() {
        tracing::warn!("requests still in flight {DRAIN:?} after shutdown began; closing their connections");
    }
    Ok(())
}

/// The answer a connection over the limit gets.
fn refusal() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let body = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            Where::Server,
            "the server has as many connections open as it allows (tenet_limits.max_connections); retry shortly",
        )
        .body();
        let mut out = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    })
}

/// Answers a connection over the limit with 503 and closes it, without
/// waiting for anything: a refusal costs no more than the accept, and holds
/// no descriptor past it. What the client already sent is read first, so
/// the close does not reset the answer away. (Over TLS there is no
/// answering before a handshake: the close is the refusal.)
fn refuse(stream: TcpStream, plain: bool) {
    use std::io::Read;
    if !plain {
        return;
    }
    // The answer is small and the send buffer empty: one write, or none.
    let _ = stream.try_write(refusal());
    let Ok(stream) = stream.into_std() else { return };
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    // Still non-blocking: reads only what has arrived.
    for _ in 0..16 {
        match (&stream).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// One connection, served until it ends, its clock runs out, or shutdown
/// asks it to finish.
async fn connection<I>(io: I, app: Router, limits: &Limits, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Watched { io, clock: clock.clone() });
    let service = Service { app, clock: clock.clone() };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The clock keeps time; hyper's header timeout would also cut idle connections short.
    builder.header_read_timeout(None).max_buf_size(limits.max_header_bytes);
    let mut conn = builder.serve_connection(io, service);
    let mut draining = false;
    let ended = loop {
        let wake = clock.deadline(limits);
        tokio::select! {
            ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break ended,
            () = tokio::time::sleep_until(wake) => {
                if let Some(why) = clock.expired(limits) {
                    // Dropping the connection closes its socket.
                    tracing::debug!(why, "closing a connection");
                    return;
                }
            }
            _ = stop.changed(), if !draining => {
                Pin::new(&mut conn).graceful_shutdown();
                draining = true;
            }
        }
    };
    match ended {
        // On shutdown the client is not sending: no need to wait on it.
        Ok(()) if !draining => linger(conn.into_parts().io.into_inner().io).await,
        Ok(()) => {}
        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
    }
}

/// Most bytes and time spent reading what a closing client still sends.
const LINGER_BYTES: usize = 1 << 20;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Closes a finished connection the way that keeps its last answer: our
/// side first (FIN), then what the client was still sending is read and
/// dropped. Closing with unread bytes would reset the connection, and a
/// reset can take the answer (a 413 for a body never read) with it.
async fn linger<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let _ = tokio::time::timeout(LINGER_TIME, async {
        io.shutdown().await?;
        let mut sink = [0u8; 8192];
        let mut read = 0;
        while read < LINGER_BYTES {
            match io.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

const IDLE: u64 = 0;
const HEAD: u64 = 1;
const BUSY: u64 = 2;

/// Where a connection is (idle, receiving a request's headers, serving a
/// request) and since when, in one word so both change together.
struct Clock {
    origin: Instant,
    /// Microseconds since `origin` << 2 | phase.
    state: AtomicU64,
}

impl Clock {
    /// A new connection owes its first request's headers from now.
    fn new() -> Self {
        Clock { origin: Instant::now(), state: AtomicU64::new(HEAD) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX >> 2) << 2
    }

    /// A request's first bytes: the header clock starts (only from idle:
    /// body bytes of a request in progress change nothing).
    fn bytes_arrived(&self) {
        let current = self.state.load(Ordering::Acquire);
        if current & 3 == IDLE {
            let _ = self.state.compare_exchange(current, self.now() | HEAD, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn set(&self, phase: u64) {
        self.state.store(self.now() | phase, Ordering::Release);
    }

    /// When the current phase runs out (a request in progress: look again later).
    fn deadline(&self, limits: &Limits) -> Instant {
        let state = self.state.load(Ordering::Acquire);
        let since = self.origin + Duration::from_micros(state >> 2);
        match state & 3 {
            IDLE => since + limits.idle_timeout(),
            HEAD => since + limits.header_timeout(),
            _ => Instant::now() + limits.header_timeout().min(limits.idle_timeout()),
        }
    }

    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        let phase = self.state.load(Ordering::Acquire) & 3;
        (phase != BUSY && Instant::now() >= self.deadline(limits)).then_some(match phase {
            IDLE => "idle timeout",
            _ => "headers not received within the header timeout",
        })
    }
}

/// The connection's stream, telling its clock when bytes arrive.
struct Watched<I> {
    io: I,
    clock: Arc<Clock>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router as hyper calls it, marking the connection busy while a
/// request is served and idle from its answer on.
#[derive(Clone)]
struct Service {
    app: Router,
    clock: Arc<Clock>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.clock.set(BUSY);
        let mut app = self.app.clone();
        let clock = self.clock.clone();
        Box::pin(async move {
            let answered = tower_service::Service::call(&mut app, req).await;
            clock.set(IDLE);
            answered
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_and_unfinished_headers_run_out_on_their_own_clocks_and_a_request_never_does() {
        let limits = Limits { header_timeout_ms: 1_000, idle_timeout_ms: 5_000, ..Limits::default() };
        let clock = Clock::new();
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(clock.expired(&limits), None, "a new connection's first headers: 0.9 s of 1");
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(clock.expired(&limits).is_some_and(|w| w.contains("header")), "silent is not idle");
        clock.set(BUSY);
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(clock.expired(&limits), None, "a request in progress is the body timeout's");
        clock.set(IDLE);
        tokio::time::advance(Duration::from_millis(4_000)).await;
        assert_eq!(clock.expired(&limits), None, "kept alive 4 s of 5");
        clock.bytes_arrived();
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(clock.expired(&limits), None, "the next request's headers: 0.9 s of 1");
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(clock.expired(&limits).is_some_and(|w| w.contains("header")));
        clock.set(BUSY);
        clock.set(IDLE);
        tokio::time::advance(Duration::from_millis(5_000)).await;
        assert_eq!(clock.expired(&limits), Some("idle timeout"));
    }
}
