//! `GET /admin/v1/openapi.json`: the OpenAPI 3 document kept in `docs/openapi.yaml`, compiled
//! in and served as JSON, so the document a client reads is the one in the repository.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};

/// The document, as written.
const YAML: &str = include_str!("../../../docs/openapi.yaml");

/// The document as JSON text, converted once.
pub(crate) fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_yaml::from_str::<serde_json::Value>(YAML)
            .map(|v| v.to_string())
            // A test (`the_document_reads`) keeps this from ever happening in a build.
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
    })
}

/// Every operator may read it.
pub(super) async fn document() -> Response {
    ([("content-type", "application/json")], json()).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_reads_and_is_openapi_3() {
        let v: serde_json::Value = serde_json::from_str(super::json()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3."), "{v}");
        assert!(v["paths"]["/admin/v1/certificates/{serial}/revoke"].is_object());
    }
}
