//! Every request on the channels' mTLS listener: the partner certificate the TLS handshake
//! verified is checked again (`nesca_ra::partners::ChannelClients`), so that a certificate
//! revoked or a partner deactivated after the handshake stops an open keep-alive connection
//! at its next request, not at its next handshake.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nesca_ra::partners::{ChannelClientRefusal, ChannelClients};

use crate::listener::mtls::{ClientChain, ClientCheck, ClientRefusal};

/// The middleware: the request goes on only while its client certificate still
/// authenticates a partner; otherwise 403 `client_certificate` with the reason.
pub(super) async fn recheck(
    State(clients): State<Arc<ChannelClients>>,
    req: Request,
    next: Next,
) -> Response {
    let end_entity = req
        .extensions()
        .get::<ClientChain>()
        .and_then(|c| c.0.first().cloned());
    // The listener requires a client certificate; a request without one is refused, never
    // let through.
    let Some(end_entity) = end_entity else {
        return refused(StatusCode::UNAUTHORIZED, "no client certificate");
    };
    let verdict = tokio::task::spawn_blocking(move || clients.check(&end_entity))
        .await
        .unwrap_or(Err(ChannelClientRefusal::Unavailable));
    match verdict {
        Ok(()) => next.run(req).await,
        Err(why) => {
            tracing::info!(
                reason = why.reason(),
                "channel request refused: client certificate"
            );
            let status = match why {
                ChannelClientRefusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            };
            refused(status, why.reason())
        }
    }
}

fn refused(status: StatusCode, reason: &str) -> Response {
    let body = serde_json::json!({
        "v": 1,
        "error": { "code": "client_certificate", "message": format!("client certificate: {reason}") },
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The channels' listener admits what [`ChannelClients`] accepts.
impl ClientCheck for ChannelClients {
    fn check(&self, end_entity: &[u8]) -> Result<(), ClientRefusal> {
        ChannelClients::check(self, end_entity).map_err(|why| match why {
            ChannelClientRefusal::Revoked => ClientRefusal::Revoked,
            other => ClientRefusal::Refused(other.reason()),
        })
    }
}
