//! The admin API (`[admin] listen`): JSON under `/admin/v1/` for named PKI operators, over
//! TLS with operator client certificates (docs/admin.md, docs/openapi.yaml). The transport
//! parses and authenticates; the registration authority decides (`ra::operators`,
//! `ra::lifecycle`, `ra::dual_control`); every change is an audit record naming the operator.

mod auth;
mod error;
mod execute;
mod openapi;
mod routes;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use ca_core::engine::{Engine, SigningCa};
use ca_core::store::Store;
use ca_core::IssuerId;
use nesca_ra::dual_control::{DualControl, DualControlPolicy};
use nesca_ra::lifecycle::Lifecycle;
use nesca_ra::operators::Operators;

use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::serve::TlsListener;
use crate::wiring::{self, ServedCa};

/// What the admin routes work with.
pub(crate) struct AdminApi {
    store: Arc<dyn Store>,
    cfg: Loaded,
    hsm: hsm::Hsm,
    lifecycle: Lifecycle,
    operators: Operators,
    dual: DualControl,
    exec: execute::Executor,
    /// The configured issuing CA's current generation, when it can issue (not revoked).
    issuing: Option<Issuing>,
    /// The channel plugins `nesca serve` loaded (name, version, path, limits).
    plugins: Vec<serde_json::Value>,
}

/// Issuance and CRLs by the configured issuing CA.
pub(crate) struct Issuing {
    engine: Engine,
    ca: SigningCa,
    crl: crl::CrlIssuer,
}

/// The admin listener, when `[admin] listen` is set, and the thread that expires requests.
pub(crate) fn listener(
    cfg: &Loaded,
    store: Arc<dyn Store>,
    (cas, hsm): (&[ServedCa], &hsm::Hsm),
    plugins: Vec<serde_json::Value>,
    stop: Arc<AtomicBool>,
) -> Result<Option<(TlsListener, std::thread::JoinHandle<()>)>> {
    let Some(listen) = cfg.raw.admin.listen.clone() else {
        return Ok(None);
    };
    // Operator certificates of every generation of the issuing CA authenticate.
    let generations: Vec<(IssuerId, Vec<u8>)> =
        wiring::configured_generations(cfg, store.as_ref(), cas)?
            .into_iter()
            .map(|c| (c.record.id.clone(), c.record.cert_der.clone()))
            .collect();
    if generations.is_empty() {
        // Every generation is revoked: no operator certificate can authenticate until a new
        // generation issues new ones (`nesca ca rollover`, then `nesca operator add`).
        tracing::error!("admin.listen: no issuing CA generation that is not revoked; the admin API is not served");
        return Ok(None);
    }
    let issuers: Vec<IssuerId> = generations.iter().map(|(id, _)| id.clone()).collect();
    let clock = wiring::clock();
    let check = Arc::new(auth::OperatorCheck {
        operators: Operators::new(store.clone(), clock.clone()),
        issuers,
    });
    let acceptor = crate::listener::mtls::acceptor(
        "admin",
        (
            &cfg.path(&cfg.raw.admin.tls_cert),
            &cfg.path(&cfg.raw.admin.tls_key),
        ),
        &generations,
        check.clone(),
    )?;
    let issuing = match wiring::configured_ca(cfg, store.as_ref(), cas) {
        Ok(ca) => Some(Issuing {
            engine: Engine::new(store.clone(), clock.clone()),
            ca: SigningCa::new(
                ca.record.id.clone(),
                ca.record.cert_der.clone(),
                ca.ca_signer.clone(),
                Some(wiring::urls_of(cfg, &ca.record.id)?),
            )?,
            crl: wiring::crl_issuer(cfg, store.clone(), ca)?,
        }),
        Err(e) => {
            tracing::error!(error = %e, "the admin API issues nothing and publishes no CRL");
            None
        }
    };
    let policy = DualControlPolicy {
        approvals_required: cfg.raw.admin.approvals_required,
        expiry: Duration::from_secs(cfg.raw.admin.request_expiry_seconds),
    };
    let api = Arc::new(AdminApi {
        lifecycle: Lifecycle::new(store.clone(), clock.clone()),
        operators: Operators::new(store.clone(), clock.clone()),
        dual: DualControl::new(store.clone(), clock.clone(), policy),
        exec: execute::Executor::new(cfg)?,
        store,
        cfg: cfg.clone(),
        hsm: hsm.clone(),
        issuing,
        plugins,
    });
    let gate = Arc::new(auth::Gate {
        check,
        limit: auth::RateLimit::new(cfg.raw.admin.requests_per_minute),
    });
    // Requests a stop left approved are carried out before anything is served: no approval
    // of this process can be carrying one of them out at the same time.
    match api.dual.resume_approved(&api.executor()) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            requests = n,
            "approved admin requests a stop cut off were carried out"
        ),
        Err(e) => {
            tracing::error!(error = %e, "approved admin requests a stop cut off could not be carried out")
        }
    }
    let app = router(api.clone()).layer(axum::middleware::from_fn_with_state(gate, auth::gate));
    // Requests past their expiry are marked expired (and recorded so) every 10 seconds, and
    // approved ones left waiting (another node was carrying requests out for longer than an
    // approval waits) are carried out.
    let sweep = std::thread::Builder::new()
        .name("nesca-admin-requests".into())
        .spawn(move || {
            crate::serve::every_until(Duration::from_secs(10), &stop, || {
                if let Err(e) = api.dual.expire_due() {
                    tracing::warn!(error = %e, "expiring admin requests failed; will retry");
                }
                match api.dual.resume_approved(&api.executor()) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(requests = n, "approved admin requests carried out"),
                    Err(e) => tracing::warn!(error = %e, "carrying out approved admin requests failed; will retry"),
                }
            })
        })
        .map_err(|e| {
            CliError::io(
                "cannot start",
                std::path::Path::new("the admin request thread"),
            )(e)
        })?;
    Ok(Some((
        TlsListener {
            field: "admin.listen",
            what: "admin API",
            tls: crate::serve::TlsKind::Mutual,
            listen,
            acceptor,
            app,
        },
        sweep,
    )))
}

impl AdminApi {
    /// The executor of approved requests, with this API's issuance.
    fn executor(&self) -> execute::Bound<'_> {
        execute::Bound { api: self }
    }
}

/// The routes; every one names the roles it allows (`routes.rs`).
fn router(api: Arc<AdminApi>) -> Router {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi::document))
        .route("/admin/v1/health", get(routes::health))
        .route("/admin/v1/certificates", get(routes::certificates))
        .route("/admin/v1/certificates/{serial}", get(routes::certificate))
        .route(
            "/admin/v1/certificates/{serial}/suspend",
            post(routes::suspend),
        )
        .route(
            "/admin/v1/certificates/{serial}/unsuspend",
            post(routes::unsuspend),
        )
        .route(
            "/admin/v1/certificates/{serial}/revoke",
            post(routes::revoke),
        )
        .route("/admin/v1/requests", get(routes::requests))
        .route("/admin/v1/requests/{id}", get(routes::request))
        .route("/admin/v1/requests/{id}/approve", post(routes::approve))
        .route("/admin/v1/requests/{id}/reject", post(routes::reject))
        .route("/admin/v1/audit", get(routes::audit))
        .route("/admin/v1/audit/verify", get(routes::audit_verify))
        .route(
            "/admin/v1/operators",
            get(routes::operators).post(routes::add_operator),
        )
        .route(
            "/admin/v1/operators/{name}/disable",
            post(routes::disable_operator),
        )
        .route("/admin/v1/partners", get(routes::partners))
        .route(
            "/admin/v1/partners/{id}/revoke-certificates",
            post(routes::revoke_partner_certificates),
        )
        .route("/admin/v1/crl", post(routes::publish_crl))
        .route("/admin/v1/ca/rollover", post(routes::rollover_ca))
        .route("/admin/v1/plugins", get(routes::plugins))
        .route("/admin/v1/institutions", get(routes::institutions))
        .route(
            "/admin/v1/institutions/{id}/applications",
            get(routes::institution_applications),
        )
        .route(
            "/admin/v1/institutions/{id}/lists/{sha256}/confirm",
            post(routes::confirm_list),
        )
        .route(
            "/admin/v1/institutions/{id}/lists/{sha256}/reject",
            post(routes::reject_list),
        )
        .route(
            "/admin/v1/ocsp-signer/renew",
            post(routes::renew_ocsp_signer),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(routes::MAX_BODY))
        .with_state(api)
}
