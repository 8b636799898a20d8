//! Front-channel plugins: starting each in its own plugin-host process as configured
//! (`crate::plugin_host`), and serving each under `/channels/{name}/…` by forwarding the HTTP
//! request to it.

mod applicant;
mod host;
mod partner_status;
mod refusal;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use nesca_plugin_api::{CallLimits, HostApi, HttpRequest, PluginError};

pub(crate) use host::{ChannelHost, Issuing};

use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::plugin_host::{PluginProcess, Spec};

/// Response headers a plugin may not set (RFC 9110 §7.6.1 connection-specific, and framing).
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "content-length",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// A plugin (in its process) with what the host enforces around it.
pub(crate) struct Channel {
    pub plugin: Arc<PluginProcess>,
    /// Largest request body forwarded to it (`[[plugins]] max_body_bytes`); more gets 413.
    pub max_body: usize,
}

/// Starts every plugin `[[plugins]]` lists, in order, each in its own process. A plugin that
/// does not load stops everything, with a message naming the file and the reason.
pub(crate) fn load_all(cfg: &Loaded, host: Arc<dyn HostApi>) -> Result<Vec<Channel>> {
    let mut loaded: Vec<Channel> = Vec::new();
    if !cfg.raw.plugins.is_empty() && runs_as_root() {
        tracing::warn!("nesca runs as root: so do its plugin-host processes, confined but with root's capabilities; run nesca as a user of its own");
    }
    for (i, p) in cfg.raw.plugins.iter().enumerate() {
        let path = cfg.path(&p.path);
        let config = serde_json::to_value(&p.config)
            .map_err(|e| CliError::config(&format!("plugins[{i}].config"), e.to_string()))?;
        let spec = Spec {
            path: path.clone(),
            config,
            limits: CallLimits {
                timeout: Duration::from_millis(p.timeout_ms),
                max_in_flight: p.max_in_flight,
            },
            max_body: p.max_body_bytes,
        };
        let plugin = PluginProcess::start(spec, host.clone())
            .map_err(|e| CliError::config(&format!("plugins[{i}]"), e.to_string()))?;
        if loaded.iter().any(|l| l.plugin.name() == plugin.name()) {
            return Err(CliError::config(
                &format!("plugins[{i}]"),
                format!(
                    "{}: a plugin named \"{}\" is loaded already",
                    path.display(),
                    plugin.name()
                ),
            ));
        }
        tracing::info!(plugin = plugin.name(), version = plugin.version(), path = %path.display(), "plugin loaded");
        loaded.push(Channel {
            plugin: Arc::new(plugin),
            max_body: p.max_body_bytes,
        });
    }
    Ok(loaded)
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn runs_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `channels` with every request's client certificate checked again against nesca's records
/// (the mTLS listener's routes).
pub(crate) fn rechecking_clients(
    channels: Router,
    clients: nesca_ra::partners::ChannelClients,
) -> Router {
    channels.layer(axum::middleware::from_fn_with_state(
        Arc::new(clients),
        partner_status::recheck,
    ))
}

/// `/channels/{name}` and everything below it, forwarded to the plugin of that name.
pub(crate) fn router(plugins: Vec<Channel>) -> Router {
    Router::new()
        .route("/channels/{name}", any(forward_root))
        .route("/channels/{name}/{*rest}", any(forward))
        .with_state(Arc::new(plugins))
}

type Plugins = Arc<Vec<Channel>>;

async fn forward_root(
    State(p): State<Plugins>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    dispatch(p, name, String::new(), req).await
}

async fn forward(
    State(p): State<Plugins>,
    Path((name, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    dispatch(p, name, rest, req).await
}

/// An answer of the host's own, before any plugin is asked, in the shape every channel's
/// errors have: `{"v":1,"error":{"code":CODE,"message":"field: rule"}}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "v": 1, "error": { "code": code, "message": message } }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

async fn dispatch(plugins: Plugins, name: String, rest: String, req: Request) -> Response {
    let Some(channel) = plugins.iter().find(|c| c.plugin.name() == name) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            // The name is the client's input: not echoed.
            "channel: no such channel is served here",
        );
    };
    let (plugin, max_body) = (channel.plugin.clone(), channel.max_body);
    let (parts, body) = req.into_parts();
    let body = match to_bytes(body, max_body).await {
        Ok(b) => b.to_vec(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!(
                    "body: the request body is larger than this channel takes ({max_body} bytes, [[plugins]] max_body_bytes)"
                ),
            )
        }
    };
    let request = HttpRequest {
        method: parts.method.to_string(),
        path: format!("/{rest}"),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
        // The chain the mTLS handshake verified; none on the plain development listener.
        client_cert_chain: parts
            .extensions
            .get::<crate::listener::mtls::ClientChain>()
            .map(|c| c.0.clone())
            .unwrap_or_default(),
    };
    let call = tokio::task::spawn_blocking(move || plugin.handle_http(&request)).await;
    match call {
        Ok(Ok(r)) => {
            // A final status only (an informational one would switch the connection's
            // protocol, say); 204 and 304 carry no body.
            let status = StatusCode::from_u16(r.status)
                .ok()
                .filter(|s| !s.is_informational())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let body = if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
                Vec::new()
            } else {
                r.body
            };
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            for (k, v) in r.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    // Framing is the server's: a plugin's length or connection header could
                    // contradict the body it actually returned.
                    if !HOP_BY_HOP.contains(&k.as_str()) {
                        response.headers_mut().append(k, v);
                    }
                }
            }
            response
        }
        Ok(Err(e)) => plugin_failure(&name, &e),
        Err(e) => {
            let id = refusal::request_id();
            tracing::error!(request_id = %id, channel = %name, error = %e, "channel call failed");
            internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
                &id,
            )
        }
    }
}

/// The answer for a plugin call that failed (timed out, busy, panicked, …): the error, which
/// may carry a panic's text, is logged with a fresh request id; the client gets the protocol's
/// error shape with a generic message naming that id.
fn plugin_failure(channel: &str, e: &PluginError) -> Response {
    let id = refusal::request_id();
    tracing::error!(request_id = %id, channel, error = %e, "plugin call failed");
    let (status, code, message) = match e {
        PluginError::Timeout { .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the channel did not answer in time",
        ),
        PluginError::Busy { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the channel is busy; try again later",
        ),
        PluginError::Unavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the channel is restarting; try again later",
        ),
        PluginError::Panicked { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        ),
        _ => (StatusCode::BAD_GATEWAY, "internal", "the channel failed"),
    };
    internal(status, code, message, &id)
}

/// `{"v":1,"error":{"code":CODE,"message":"MESSAGE; request id ID"}}`.
fn internal(status: StatusCode, code: &str, message: &str, id: &str) -> Response {
    let body = serde_json::json!({
        "v": 1,
        "error": { "code": code, "message": format!("{message}; request id {id}") },
    })
    .to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin's panic text reaches the log, under the request id the answer names, and not
    /// the client.
    #[test]
    fn a_panic_is_logged_and_answered_with_a_request_id() {
        let (log, response) = crate::test_log::capture(|| {
            plugin_failure(
                "kdhs",
                &PluginError::Panicked {
                    plugin: "kdhs".into(),
                    message: "index out of bounds at /home/build/secret.rs:12".into(),
                },
            )
        });
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = futures_body(response);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert_eq!(
            (v["v"].as_i64(), v["error"]["code"].as_str()),
            (Some(1), Some("internal"))
        );
        assert!(
            message.starts_with("internal error; request id r-"),
            "{body}"
        );
        assert!(
            !body.contains("secret.rs") && !body.contains("out of bounds"),
            "{body}"
        );
        let id = message.rsplit(' ').next().unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            line.contains("index out of bounds at /home/build/secret.rs:12"),
            "{line}"
        );
    }

    /// The host's own refusals (an oversized body, an unknown channel) have the shape of
    /// every channel's errors.
    #[test]
    fn the_hosts_own_refusals_have_the_channels_error_shape() {
        let r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "body: too large",
        );
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let v: serde_json::Value = serde_json::from_str(&futures_body(r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v": 1, "error": {"code": "too_large", "message": "body: too large"}})
        );
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt.block_on(to_bytes(r.into_body(), 1 << 16)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
