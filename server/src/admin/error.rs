//! The admin API's errors: JSON `{"error": {"code", "field", "message", "request_id"}}` with
//! the status that says what went wrong. A refusal of the registration authority keeps its
//! field and rule; a failure underneath (the store, the HSM) is logged in full and answered
//! as `503 unavailable` without its details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nesca_ra::RaError;

/// The id every admin response carries (header `x-request-id`, and in every error body); the
/// log lines of the request name it, and the changes it makes are recorded under it.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// One refused or failed admin request.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) field: Option<String>,
    pub(crate) message: String,
    /// Seconds to wait, for a 429 (`Retry-After`).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            field: field.map(str::to_owned),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Input that breaks a rule: 422 `invalid`, naming the field.
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
            message,
        )
    }

    /// A body that is not the JSON the endpoint takes: 400 `bad_request`.
    pub(crate) fn bad_request(field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", field, message)
    }

    pub(crate) fn not_found(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", Some(field), message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", Some("role"), message)
    }

    /// Something underneath failed: the log has it, the client gets 503.
    pub(crate) fn unavailable(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "admin API: {what} failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            None,
            format!("{what} is not available now; try again later"),
        )
    }

    /// The response, with the request's id.
    pub(crate) fn into_response_with(self, id: &RequestId) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "field": self.field,
                "message": self.message,
                "request_id": id.0,
            }
        });
        let mut r = (
            self.status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            let secs = self.retry_after.unwrap_or(60).max(1);
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
        }
        r
    }
}

impl From<RaError> for ApiError {
    fn from(e: RaError) -> ApiError {
        if let RaError::Locked { field, until, .. } = &e {
            let now = crate::wiring::clock().now_unix();
            let mut a = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "locked",
                Some(field),
                e.to_string(),
            );
            a.retry_after = Some(until.secs().saturating_sub(now.secs()).max(1) as u64);
            return a;
        }
        let (status, code, field) = match &e {
            RaError::Invalid { field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some(*field))
            }
            RaError::NotFound { field, .. } => (StatusCode::NOT_FOUND, "not_found", Some(*field)),
            RaError::Conflict { field, .. } => (StatusCode::CONFLICT, "conflict", Some(*field)),
            RaError::Unauthenticated { field, .. } => {
                (StatusCode::FORBIDDEN, "holder_not_proven", Some(*field))
            }
            RaError::Refused { field, .. } => (StatusCode::FORBIDDEN, "refused", Some(*field)),
            RaError::Ca(ca_core::CaError::NotFound { .. }) => {
                (StatusCode::NOT_FOUND, "not_found", Some("serial"))
            }
            RaError::Ca(ca_core::CaError::AlreadyExists { .. }) => {
                (StatusCode::CONFLICT, "conflict", None)
            }
            RaError::Ca(ca_core::CaError::Lint { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", None)
            }
            _ => return ApiError::unavailable("the operation", &e),
        };
        ApiError::new(status, code, field, e.to_string())
    }
}

impl From<ca_core::CaError> for ApiError {
    fn from(e: ca_core::CaError) -> ApiError {
        RaError::from(e).into()
    }
}
