//! A channel: the routes of the protocol, and the checks every route shares (1, 3–6), with the
//! channel's own rules (a [`ChannelPolicy`]), its host and its clock.

use std::sync::Arc;

use nesca_plugin_api::{HttpRequest, HttpResponse, LogLevel};
use serde_json::Value;

use crate::answer::error_response;
use crate::client::ClientCertificate;
use crate::clock::Clock;
use crate::config::{CommonConfig, ConfigReader, COMMON_KEYS};
use crate::error::ChannelError;
use crate::host::HostCalls;
use crate::kdb::{Kdb, Purpose};
use crate::kdbo::Kdbo;
use crate::policy::ChannelPolicy;
use crate::{application, commitment, lifecycle};

/// One identity-card channel, ready to answer requests from any thread.
pub struct Channel {
    pub(crate) policy: Box<dyn ChannelPolicy>,
    pub(crate) common: CommonConfig,
    pub(crate) host: Arc<dyn HostCalls>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// An endpoint of the protocol (paths as the plugin sees them, after `/channels/{name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route<'a> {
    /// `POST /v1/applications`
    Applications,
    /// `POST /v1/certificates/{serial}/commitment`
    Commitment(&'a str),
    /// `POST /v1/lifecycle` (channels that serve it)
    Lifecycle,
}

impl<'a> Route<'a> {
    fn parse(method: &str, path: &'a str, lifecycle: bool) -> Result<Route<'a>, ChannelError> {
        let route = match path {
            "/v1/applications" => Route::Applications,
            "/v1/lifecycle" if lifecycle => Route::Lifecycle,
            _ => match path
                .strip_prefix("/v1/certificates/")
                .and_then(|rest| rest.strip_suffix("/commitment"))
            {
                Some(serial) if !serial.is_empty() && !serial.contains('/') => {
                    Route::Commitment(serial)
                }
                // The path is not echoed: it is the client's input.
                _ => {
                    return Err(ChannelError::not_found(
                        "path",
                        "no such endpoint on this channel",
                    ))
                }
            },
        };
        if method != "POST" {
            return Err(ChannelError::method_not_allowed(
                "method",
                "this endpoint takes POST only",
            ));
        }
        Ok(route)
    }

    fn name(&self) -> &'static str {
        match self {
            Route::Applications => "application",
            Route::Commitment(_) => "commitment",
            Route::Lifecycle => "lifecycle request",
        }
    }
}

impl Channel {
    /// A channel with `policy`'s rules and the shared configuration `common`, calling `host`
    /// and reading the time from `clock`.
    pub fn new(
        policy: Box<dyn ChannelPolicy>,
        common: CommonConfig,
        host: Arc<dyn HostCalls>,
        clock: Arc<dyn Clock>,
    ) -> Channel {
        Channel {
            policy,
            common,
            host,
            clock,
        }
    }

    /// A channel from the plugin's configuration: its keys must be among `own_keys` and
    /// [`COMMON_KEYS`]; `policy` reads the channel's own keys (e.g. `KdhsPolicy::read`),
    /// [`CommonConfig::read`] the rest.
    pub fn from_config<P: ChannelPolicy + 'static>(
        config: Value,
        own_keys: &[&str],
        policy: impl FnOnce(&ConfigReader) -> Result<P, ChannelError>,
        host: Arc<dyn HostCalls>,
        clock: Arc<dyn Clock>,
    ) -> Result<Channel, ChannelError> {
        let known: Vec<&str> = own_keys.iter().chain(COMMON_KEYS).copied().collect();
        let reader = ConfigReader::new(config, &known)?;
        let policy = Box::new(policy(&reader)?);
        let common = CommonConfig::read(&reader)?;
        Ok(Channel::new(policy, common, host, clock))
    }

    /// Answers one request under `/channels/{name}`. Never panics on the request's content;
    /// every refusal is a JSON error body (see [`error_response`]).
    pub fn handle(&self, request: &HttpRequest) -> HttpResponse {
        let route = match Route::parse(
            &request.method,
            &request.path,
            self.policy.serves_lifecycle(),
        ) {
            Ok(route) => route,
            Err(e) => return error_response(&e),
        };
        let result = match route {
            Route::Applications => application::handle(self, request),
            Route::Commitment(serial) => commitment::handle(self, request, serial),
            Route::Lifecycle => lifecycle::handle(self, request),
        };
        result.unwrap_or_else(|e| {
            // The code and the field only: a rule may quote personal data the host wrote.
            self.host.log(
                LogLevel::Info,
                &format!("{} refused: {} ({})", route.name(), e.code(), e.field()),
            );
            error_response(&e)
        })
    }

    /// Check 1: the TLS client is a secure-communication certificate this channel accepts.
    pub(crate) fn authenticate(
        &self,
        request: &HttpRequest,
    ) -> Result<ClientCertificate, ChannelError> {
        let client = ClientCertificate::from_chain(&request.client_cert_chain)?;
        self.policy.check_client(&client)?;
        Ok(client)
    }

    /// Checks 3 to 6 on a KDBO: its signature, its signer, its KDB (made for `purpose`), and
    /// the KDB's age.
    pub(crate) fn verify_kdbo(
        &self,
        der: &[u8],
        client: &ClientCertificate,
        purpose: Purpose,
        now: i64,
    ) -> Result<(Kdbo, Kdb), ChannelError> {
        let kdbo = Kdbo::verify(der)?;
        self.policy
            .check_kdbo_signer(&kdbo, client, &*self.host, now)?;
        let kdb = Kdb::parse(kdbo.content())?;
        kdb.require_purpose(purpose)?;
        kdb.check_age(now, self.common.kdb_max_age_minutes)?;
        Ok((kdbo, kdb))
    }

    /// The channel's name (`/channels/{name}`).
    pub fn name(&self) -> &'static str {
        self.policy.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{body_json, post, Fixture};

    #[test]
    fn routes_and_methods() {
        assert_eq!(
            Route::parse("POST", "/v1/applications", false),
            Ok(Route::Applications)
        );
        assert_eq!(
            Route::parse("POST", "/v1/certificates/0A1b/commitment", false),
            Ok(Route::Commitment("0A1b"))
        );
        assert_eq!(
            Route::parse("POST", "/v1/lifecycle", true),
            Ok(Route::Lifecycle)
        );
        for (path, lifecycle) in [
            ("/v1/lifecycle", false),
            ("/v1/applications/", false),
            ("/v2/applications", false),
            ("/v1/certificates//commitment", false),
            ("/v1/certificates/a/b/commitment", false),
            ("/", false),
        ] {
            let e = Route::parse("POST", path, lifecycle).unwrap_err();
            assert_eq!((e.code(), e.http_status()), ("not_found", 404), "{path}");
        }
        let e = Route::parse("GET", "/v1/applications", false).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("method_not_allowed", 405));
    }

    #[test]
    fn unknown_paths_and_methods_answer_json_errors() {
        let f = Fixture::new();
        let r = f
            .channel
            .handle(&post("/nope", &serde_json::json!({}), vec![]));
        assert_eq!(r.status, 404);
        assert_eq!(body_json(&r)["error"]["code"], "not_found");
        let mut get = post("/v1/applications", &serde_json::json!({}), vec![]);
        get.method = "GET".into();
        let r = f.channel.handle(&get);
        assert_eq!(r.status, 405);
        assert_eq!(
            body_json(&r)["error"]["message"],
            "method: this endpoint takes POST only"
        );
        assert!(r.headers.contains(&("allow".into(), "POST".into())));
        // Routing refusals reach no host method.
        assert!(f.host.state().submitted.is_empty());
    }

    #[test]
    fn refusals_are_logged_by_code_and_field_only() {
        let f = Fixture::new();
        let mut body = f.application_body();
        body["firmware_sha256"] = "nope".into();
        let r = f
            .channel
            .handle(&post("/v1/applications", &body, f.kdhs_client()));
        assert_eq!(r.status, 400);
        let logs = f.host.state().logs.clone();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].1, "application refused: request (firmware_sha256)");
    }
}
