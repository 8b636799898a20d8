//! The JSON answers of the protocol: `{"v":1, …}` bodies and the error body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use nesca_plugin_api::HttpResponse;
use serde_json::{json, Value};

use crate::error::ChannelError;

/// A JSON answer with `status`; `body` already carries `"v": 1`.
pub(crate) fn json(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::json(status, body)
}

/// The error answer: `{"v":1,"error":{"code":…,"message":"field: rule"}}`, with `allow: POST`
/// on a 405 (every endpoint of the protocol is POST).
pub fn error_response(error: &ChannelError) -> HttpResponse {
    let body = json!({"v": 1, "error": {"code": error.code(), "message": error.to_string()}});
    let response = json(error.http_status(), &body);
    if error.http_status() == 405 {
        response.with_header("allow", "POST")
    } else {
        response
    }
}

/// Bytes as the protocol writes them: standard base64 with padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_the_protocol_shape() {
        let r = error_response(&ChannelError::kdb_age("kdb.verified_at", "too old"));
        assert_eq!(r.status, 422);
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/json".into())));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"v":1,"error":{"code":"kdb_age","message":"kdb.verified_at: too old"}})
        );
        let r = error_response(&ChannelError::method_not_allowed("method", "POST only"));
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("allow".into(), "POST".into())));
    }

    #[test]
    fn bytes_are_standard_base64_with_padding() {
        assert_eq!(b64(&[0xfb, 0xff]), "+/8=");
    }
}
