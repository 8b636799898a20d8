//! The admin API's routes. Each names the roles it allows (`allow`), parses its input at the
//! edge into typed values (a refusal names the field), and calls the registration
//! authority off the async runtime. Answers are JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use ca_core::lifecycle::{LifecycleAction, RequestId as ChangeId, RevocationReason};
use ca_core::store::{
    AdminRequestRecord, AdminRequestStatus, CertStatus, CertificateQuery, HolderChannel,
    RevocationGrounds,
};
use ca_core::{rfc3339, OperatorActor, OperatorName, OperatorRole, Principal, Serial, Tckn};
use nesca_ra::dual_control::{AdminAction, Step};
use nesca_ra::lifecycle::HolderRequest;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::allow;
use super::error::{ApiError, RequestId};
use super::AdminApi;

/// The largest request body taken (a CSR fits many times over).
pub(super) const MAX_BODY: usize = 64 * 1024;

use OperatorRole::{Auditor, CaOperator, RaOfficer, SecurityOfficer};
const EVERYONE: &[OperatorRole] = &[RaOfficer, CaOperator, Auditor, SecurityOfficer];

type Api = State<Arc<AdminApi>>;
type Actor = Extension<OperatorActor>;
type Rid = Extension<RequestId>;

/// Runs blocking work (the store, the HSM) off the runtime and answers: `status` with the
/// value, or the error with the request id.
async fn answer(
    id: &RequestId,
    status: StatusCode,
    work: impl FnOnce() -> Result<Value, ApiError> + Send + 'static,
) -> Response {
    let result = tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::unavailable("the request", &e)));
    match result {
        Ok(v) => (
            status,
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response_with(id),
    }
}

/// The query's parameters, as sent (not `%`-decoded: no parameter here needs it, and an
/// escaped value fails its own check); refuses one not in `known` and one given twice.
fn query(raw: Option<String>, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !known.contains(&k) {
            let shown: String = k.chars().take(40).collect();
            return Err(ApiError::invalid(
                "query",
                format!("unknown parameter \"{shown}\"; known: {}", known.join(", ")),
            ));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(ApiError::invalid(k, "is given twice"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `limit`: 1 to `max`, default `default`.
fn limit(q: &[(String, String)], default: u32, max: u32) -> Result<u32, ApiError> {
    match param(q, "limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", format!("must be a whole number from 1 to {max}"))
            }),
    }
}

fn serial(s: &str) -> Result<Serial, ApiError> {
    Serial::parse_hex(s).map_err(|e| ApiError::invalid("serial", e.rule()))
}

/// A JSON body of type `T` (an empty body reads as `{}`).
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // An object, nothing else: serde's derived structs would also read a JSON array.
    let value: Value = serde_json::from_slice(text)
        .map_err(|_| ApiError::bad_request(Some("body"), "must be a JSON object"))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(Some("body"), "must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| {
        // Never a value from the body (serde's "invalid type: integer `482913`" would echo a
        // security word made of digits): the unknown or missing field's name, or the kind of
        // mistake alone.
        let msg = e.to_string();
        let said = if msg.starts_with("unknown field") || msg.starts_with("missing field") {
            msg.split(", expected")
                .next()
                .unwrap_or("")
                .chars()
                .take(120)
                .collect()
        } else {
            "a field has a value of the wrong type".to_owned()
        };
        ApiError::bad_request(
            Some("body"),
            format!("not the JSON this endpoint takes: {said}"),
        )
    })
}

pub(super) async fn method_not_allowed(Extension(id): Rid) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        Some("method"),
        "this endpoint does not take this method",
    )
    .into_response_with(&id)
}

pub(super) async fn not_found(Extension(id): Rid) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        Some("path"),
        "no such endpoint",
    )
    .into_response_with(&id)
}

// ---- health -------------------------------------------------------------------------------

/// `GET /admin/v1/health`: the store, the HSM, the OCSP signers and the CAs' expiries.
pub(super) async fn health(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
) -> Response {
    if let Err(e) = allow(&actor, EVERYONE) {
        return e.into_response_with(&id);
    }
    answer(&id, StatusCode::OK, move || {
        let now = crate::wiring::clock().now_unix();
        let store = match api.store.cas() {
            Ok(cas) => Ok(cas),
            Err(e) => {
                tracing::warn!(error = %e, "health: store");
                Err(())
            }
        };
        // The token answers and holds the issuing CA's key (or, with no issuing CA that can
        // sign, at least answers).
        let issuing_label = api.issuing.as_ref().and_then(|i| {
            let cas = store.as_deref().unwrap_or(&[]);
            cas.iter()
                .find(|c| c.id == i.ca.context.id)
                .map(|c| c.key_label.clone())
        });
        let hsm_ok = match issuing_label {
            Some(label) => api.hsm.has_key(&label).unwrap_or(false),
            None => api.hsm.has_key(&api.cfg.raw.audit.key_label).is_ok(),
        };
        let days = |t: ca_core::UnixTime| (t.secs() - now.secs()) / 86_400;
        let mut cas = Vec::new();
        let mut signers = Vec::new();
        for ca in store.as_deref().unwrap_or(&[]) {
            let validity = crate::ocsp_signer::validity(&ca.cert_der);
            let revoked = nesca_ra::ca_status::is_revoked(api.store.as_ref(), ca).unwrap_or(false);
            cas.push(json!({
                "id": ca.id.as_str(),
                "role": ca.role.as_str(),
                "not_after": validity.map(|v| rfc3339(v.1)),
                "days_left": validity.map(|v| days(v.1)),
                "revoked": revoked,
            }));
            if let Some(cert) = &ca.ocsp_cert_der {
                let v = crate::ocsp_signer::validity(cert);
                signers.push(json!({
                    "ca": ca.id.as_str(),
                    "key_label": ca.ocsp_key_label,
                    "not_after": v.map(|v| rfc3339(v.1)),
                    "days_left": v.map(|v| days(v.1)),
                    "health": api.exec.renewal.health_of(ca, now).as_str(),
                }));
            }
        }
        let ok = store.is_ok() && hsm_ok;
        Ok(json!({
            "status": if ok { "ok" } else { "degraded" },
            "store": { "ok": store.is_ok() },
            "hsm": { "ok": hsm_ok },
            "cas": cas,
            "ocsp_signers": signers,
        }))
    })
    .await
}

// ---- certificates -------------------------------------------------------------------------

/// `GET /admin/v1/certificates?tckn=&status=&limit=`: newest first.
pub(super) async fn certificates(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    RawQuery(raw): RawQuery,
) -> Response {
    let parsed = allow(&actor, &[RaOfficer, Auditor]).and_then(|()| {
        let q = query(raw, &["tckn", "status", "limit"])?;
        let tckn = param(&q, "tckn")
            .map(|t| Tckn::parse(t).map_err(|e| ApiError::invalid("tckn", e.to_string())))
            .transpose()?;
        let status = param(&q, "status")
            .map(|s| match s {
                "active" => Ok(CertStatus::Active),
                "suspended" => Ok(CertStatus::Suspended),
                "revoked" => Ok(CertStatus::Revoked),
                _ => Err(ApiError::invalid(
                    "status",
                    "must be active, suspended or revoked",
                )),
            })
            .transpose()?;
        Ok(CertificateQuery {
            tckn,
            status,
            limit: limit(&q, 100, 1000)?,
        })
    });
    let q = match parsed {
        Ok(q) => q,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        let found = api.store.find_certificates(&q)?;
        let list: Vec<Value> = found.iter().map(crate::commands::cert::to_json).collect();
        Ok(json!({ "certificates": list }))
    })
    .await
}

/// `GET /admin/v1/certificates/{serial}`: with its history.
pub(super) async fn certificate(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(s): Path<String>,
) -> Response {
    let serial = match allow(&actor, &[RaOfficer, Auditor]).and_then(|()| serial(&s)) {
        Ok(s) => s,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        let record = api
            .store
            .get(None, &serial)?
            .filter(|r| r.cert_der.is_some())
            .ok_or_else(|| ApiError::not_found("serial", format!("no certificate {serial}")))?;
        Ok(json!({ "certificate": crate::commands::cert::detail_json(api.store.as_ref(), &record)? }))
    })
    .await
}

/// The body of a suspension, release or revocation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    reason: Option<String>,
    holder_request: Option<HolderRequestBody>,
    grounds: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderRequestBody {
    tckn: String,
    channel: String,
    #[serde(default, deserialize_with = "secret")]
    security_word: Option<SecretString>,
}

/// Reads a secret straight into a [`SecretString`] (never logged, zeroed when dropped).
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

/// The holder's request, typed.
fn holder_request(
    h: HolderRequestBody,
    serial: Serial,
    action: LifecycleAction,
    actor: &OperatorActor,
    id: &RequestId,
) -> Result<HolderRequest, ApiError> {
    let tckn = Tckn::parse(&h.tckn)
        .map_err(|e| ApiError::invalid("holder_request.tckn", e.to_string()))?;
    let channel = HolderChannel::parse(&h.channel).map_err(|_| {
        ApiError::invalid(
            "holder_request.channel",
            "must be written, phone or in_person",
        )
    })?;
    Ok(HolderRequest {
        serial,
        action,
        tckn,
        channel,
        security_word: h.security_word,
        request_id: ChangeId::new(&format!("admin-{}", id.0))?,
        actor: Principal::Operator(actor.clone()),
    })
}

/// Suspension, release, and revocation with the holder's request: carried out now (200).
/// Revocation on the provider's grounds: a dual-control request (202).
async fn change(
    api: Arc<AdminApi>,
    actor: OperatorActor,
    id: RequestId,
    s: String,
    verb: &'static str,
    bytes: Bytes,
) -> Response {
    let parsed = (|| {
        allow(&actor, &[RaOfficer])?;
        let serial = serial(&s)?;
        let b: ChangeBody = body(&bytes)?;
        if verb != "revoke" {
            for (given, field) in [
                (b.reason.is_some(), "reason"),
                (b.grounds.is_some(), "grounds"),
                (b.note.is_some(), "note"),
            ] {
                if given {
                    return Err(ApiError::invalid(
                        field,
                        format!("{verb} takes only holder_request"),
                    ));
                }
            }
        }
        let reason = b
            .reason
            .as_deref()
            .map(|r| {
                let r = r
                    .parse::<RevocationReason>()
                    .map_err(|e| ApiError::invalid("reason", e.to_string()))?;
                if !RevocationReason::FOR_REVOCATION.contains(&r) {
                    return Err(ApiError::invalid(
                        "reason",
                        format!("{r} is not a revocation reason"),
                    ));
                }
                Ok(r)
            })
            .transpose()?;
        match (b.holder_request, b.grounds) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "grounds",
                "a change is either the holder's (holder_request) or the provider's (grounds), not both",
            )),
            (None, None) => Err(ApiError::invalid(
                "holder_request",
                if verb == "revoke" {
                    "is required (or grounds, for a revocation the provider makes)"
                } else {
                    "is required: a suspension or release is made on the holder's request"
                },
            )),
            (Some(h), None) => {
                let action = match verb {
                    "suspend" => LifecycleAction::Suspend,
                    "unsuspend" => LifecycleAction::Release,
                    _ => LifecycleAction::Revoke { reason, invalidity_date: None },
                };
                Ok(Change::Holder(holder_request(h, serial, action, &actor, &id)?))
            }
            (None, Some(g)) => {
                let grounds = RevocationGrounds::parse(&g).map_err(|_| {
                    ApiError::invalid(
                        "grounds",
                        "must be death, incapacity, court_decision, false_information or cessation",
                    )
                })?;
                let note = b.note.unwrap_or_default();
                let n = note.chars().count();
                if n == 0 || n > 1000 || note.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(ApiError::invalid(
                        "note",
                        "is required: 1 to 1000 characters saying what the grounds rest on (a court decision's number, a death record)",
                    ));
                }
                Ok(Change::Provider { serial, reason, grounds, note })
            }
        }
    })();
    let change = match parsed {
        Ok(c) => c,
        Err(e) => return e.into_response_with(&id),
    };
    match change {
        Change::Holder(req) => {
            answer(&id, StatusCode::OK, move || {
                let outcome = api.lifecycle.apply_holder_request(req)?;
                // The change is made: a failed read afterwards must not answer as if it were not.
                let record = api
                    .store
                    .get(Some(&outcome.issuer), &outcome.serial)
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "certificate not read back after its change");
                        None
                    });
                let certificate = match &record {
                    Some(r) => crate::commands::cert::to_json(r),
                    None => json!({
                        "serial": outcome.serial.to_hex(),
                        "issuer": outcome.issuer.as_str(),
                        "status": outcome.status.as_str(),
                    }),
                };
                Ok(json!({ "certificate": certificate, "replayed": outcome.replayed }))
            })
            .await
        }
        Change::Provider {
            serial,
            reason,
            grounds,
            note,
        } => {
            let trace = id.0.clone();
            answer(&id, StatusCode::ACCEPTED, move || {
                let record = api.lifecycle.provider_revocable(&serial)?;
                let action = AdminAction::RevokeCertificate {
                    issuer: record.issuer.to_string(),
                    serial: serial.to_hex(),
                    reason: reason.map(|r| r.name().to_owned()),
                    grounds: grounds.as_str().to_owned(),
                    note,
                };
                let request = api.dual.request(
                    Step {
                        by: &actor,
                        trace: &trace,
                    },
                    &action,
                )?;
                Ok(json!({ "request": request_json(&request) }))
            })
            .await
        }
    }
}

enum Change {
    Holder(HolderRequest),
    Provider {
        serial: Serial,
        reason: Option<RevocationReason>,
        grounds: RevocationGrounds,
        note: String,
    },
}

pub(super) async fn suspend(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(s): Path<String>,
    b: Bytes,
) -> Response {
    change(api, actor, id, s, "suspend", b).await
}

pub(super) async fn unsuspend(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(s): Path<String>,
    b: Bytes,
) -> Response {
    change(api, actor, id, s, "unsuspend", b).await
}

pub(super) async fn revoke(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(s): Path<String>,
    b: Bytes,
) -> Response {
    change(api, actor, id, s, "revoke", b).await
}

// ---- dual-control requests ----------------------------------------------------------------

/// A request as the API shows it.
fn request_json(r: &AdminRequestRecord) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::String(s.to_owned()));
    json!({
        "id": r.id,
        "action": r.action,
        "status": r.status.as_str(),
        "approver_role": r.approver_role.as_str(),
        "requested_by": r.requested_by.as_str(),
        "created_at": rfc3339(r.created_at),
        "expires_at": rfc3339(r.expires_at),
        "approvals": r.approvals.iter().map(|(n, at)| json!({ "operator": n.as_str(), "at": rfc3339(*at) })).collect::<Vec<_>>(),
        "decided_at": r.decided_at.map(rfc3339),
        "parameters": parse(&r.payload),
        "result": r.result.as_deref().map(parse),
    })
}

/// `GET /admin/v1/requests?status=&limit=`.
pub(super) async fn requests(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    RawQuery(raw): RawQuery,
) -> Response {
    let parsed = allow(&actor, EVERYONE).and_then(|()| {
        let q = query(raw, &["status", "limit"])?;
        let status = param(&q, "status")
            .map(|s| {
                AdminRequestStatus::parse(s).map_err(|_| {
                    ApiError::invalid(
                        "status",
                        "must be pending, approved, executed, failed, rejected or expired",
                    )
                })
            })
            .transpose()?;
        Ok((status, limit(&q, 100, 1000)?))
    });
    let (status, n) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        let list = api.dual.list(status, n)?;
        Ok(json!({ "requests": list.iter().map(request_json).collect::<Vec<_>>() }))
    })
    .await
}

/// A request id: 32 hex digits.
fn request_id(s: &str) -> Result<String, ApiError> {
    if s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(s.to_owned())
    } else {
        Err(ApiError::invalid(
            "id",
            "must be a request id (32 lower-case hex digits)",
        ))
    }
}

pub(super) async fn request(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(rid): Path<String>,
) -> Response {
    let rid = match allow(&actor, EVERYONE).and_then(|()| request_id(&rid)) {
        Ok(r) => r,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        api.dual.expire_due()?;
        Ok(json!({ "request": request_json(&api.dual.get(&rid)?) }))
    })
    .await
}

/// `POST /admin/v1/requests/{id}/approve`: an operator of the request's role who is not its
/// requester; the approval that completes it carries it out.
pub(super) async fn approve(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(rid): Path<String>,
    b: Bytes,
) -> Response {
    decision(api, actor, id, rid, b, true).await
}

/// `POST /admin/v1/requests/{id}/reject`.
pub(super) async fn reject(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(rid): Path<String>,
    b: Bytes,
) -> Response {
    decision(api, actor, id, rid, b, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn decision(
    api: Arc<AdminApi>,
    actor: OperatorActor,
    id: RequestId,
    rid: String,
    b: Bytes,
    approve: bool,
) -> Response {
    let rid = match allow(&actor, &[RaOfficer, CaOperator, SecurityOfficer])
        .and_then(|()| request_id(&rid))
        .and_then(|r| body::<Empty>(&b).map(|_| r))
    {
        Ok(r) => r,
        Err(e) => return e.into_response_with(&id),
    };
    let trace = id.0.clone();
    answer(&id, StatusCode::OK, move || {
        // An expired request is refused by the store (approve) or by `reject` itself.
        let record = if approve {
            let exec = api.executor();
            api.dual.approve(
                Step {
                    by: &actor,
                    trace: &trace,
                },
                &rid,
                &exec,
            )?
        } else {
            api.dual.reject(
                Step {
                    by: &actor,
                    trace: &trace,
                },
                &rid,
            )?
        };
        Ok(json!({ "request": request_json(&record) }))
    })
    .await
}

// ---- audit --------------------------------------------------------------------------------

/// `GET /admin/v1/audit?from=&limit=`: records from `from` (default 1) on.
pub(super) async fn audit(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    RawQuery(raw): RawQuery,
) -> Response {
    let parsed = allow(&actor, &[Auditor]).and_then(|()| {
        let q = query(raw, &["from", "limit"])?;
        let from = match param(&q, "from") {
            None => 1,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=i64::MAX / 2).contains(n))
                .ok_or_else(|| ApiError::invalid("from", "must be a sequence number, 1 or more"))?,
        };
        Ok((from, limit(&q, 100, 1000)?))
    });
    let (from, n) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        let records = api.store.audit_records(from, from + i64::from(n) - 1)?;
        let head = api.store.audit_head()?.map(|(seq, _)| seq).unwrap_or(0);
        Ok(json!({
            "head": head,
            "records": records.iter().map(|r| json!({
                "seq": r.entry.seq,
                "at": rfc3339(r.entry.at),
                "actor": r.entry.actor,
                "action": r.entry.action,
                "issuer": r.entry.issuer,
                "serial": r.entry.serial,
                "detail": r.entry.detail,
                "hash": hex::encode(&r.hash),
            })).collect::<Vec<_>>(),
        }))
    })
    .await
}

/// `GET /admin/v1/audit/verify`: what `nesca audit verify` checks.
pub(super) async fn audit_verify(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
) -> Response {
    if let Err(e) = allow(&actor, &[Auditor]) {
        return e.into_response_with(&id);
    }
    answer(&id, StatusCode::OK, move || {
        let (verdict, anchor) =
            crate::commands::audit::run_verify(&api.cfg, api.store.as_ref(), &api.hsm)
                .map_err(|e| ApiError::unavailable("audit verification", &e))?;
        Ok(json!({
            "intact": verdict.findings.is_empty(),
            "records": verdict.records,
            "checkpoints": verdict.checkpoints,
            "anchor_lines": anchor,
            "first_bad_seq": verdict.first_bad_seq(),
            "findings": verdict.findings.iter().map(|f| json!({
                "message": f.describe(),
                "first_bad_seq": f.first_bad_seq(),
            })).collect::<Vec<_>>(),
        }))
    })
    .await
}

// ---- operators ----------------------------------------------------------------------------

pub(super) async fn operators(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
) -> Response {
    if let Err(e) = allow(&actor, &[SecurityOfficer, Auditor]) {
        return e.into_response_with(&id);
    }
    answer(&id, StatusCode::OK, move || {
        let list = api.operators.list()?;
        Ok(json!({ "operators": list.iter().map(crate::commands::operator::to_json).collect::<Vec<_>>() }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddOperatorBody {
    name: String,
    role: String,
    csr: String,
}

/// `POST /admin/v1/operators`: a dual-control request to register an operator.
pub(super) async fn add_operator(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    b: Bytes,
) -> Response {
    let parsed = allow(&actor, &[SecurityOfficer]).and_then(|()| {
        let b: AddOperatorBody = body(&b)?;
        let name = OperatorName::parse(&b.name).map_err(|e| ApiError::invalid("name", e.rule()))?;
        let role = OperatorRole::parse(&b.role).map_err(|e| ApiError::invalid("role", e.rule()))?;
        ca_core::VerifiedCsr::parse(b.csr.as_bytes())
            .map_err(|e| ApiError::invalid("csr", e.to_string()))?;
        Ok((name, role, b.csr))
    });
    let (name, role, csr) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response_with(&id),
    };
    let trace = id.0.clone();
    answer(&id, StatusCode::ACCEPTED, move || {
        if let Some(existing) = api.store.operator(&name)? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                Some("name"),
                format!(
                    "\"{name}\" is registered already (as {}); one person holds one role",
                    existing.role
                ),
            ));
        }
        let action = AdminAction::AddOperator {
            name: name.to_string(),
            role: role.as_str().to_owned(),
            csr_pem: csr,
            validity_days: api.cfg.raw.admin.operator_validity_days,
        };
        Ok(json!({ "request": request_json(&api.dual.request(Step { by: &actor, trace: &trace }, &action)?) }))
    })
    .await
}

/// `POST /admin/v1/operators/{name}/disable`: a dual-control request.
pub(super) async fn disable_operator(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(name): Path<String>,
    b: Bytes,
) -> Response {
    let parsed = allow(&actor, &[SecurityOfficer])
        .and_then(|()| body::<Empty>(&b).map(|_| ()))
        .and_then(|()| OperatorName::parse(&name).map_err(|e| ApiError::invalid("name", e.rule())));
    let name = match parsed {
        Ok(n) => n,
        Err(e) => return e.into_response_with(&id),
    };
    let trace = id.0.clone();
    answer(&id, StatusCode::ACCEPTED, move || {
        api.operators
            .check_disable(&name, api.dual.policy().approvals_required)?;
        let action = AdminAction::DisableOperator {
            name: name.to_string(),
        };
        Ok(json!({ "request": request_json(&api.dual.request(Step { by: &actor, trace: &trace }, &action)?) }))
    })
    .await
}

// ---- the CA -------------------------------------------------------------------------------

pub(super) async fn partners(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
) -> Response {
    if let Err(e) = allow(&actor, &[CaOperator, Auditor]) {
        return e.into_response_with(&id);
    }
    answer(&id, StatusCode::OK, move || {
        let list = api.store.partners()?;
        Ok(json!({ "partners": list.iter().map(|p| json!({
            "id": p.id.as_str(),
            "name": p.name,
            "license_no": p.license_no,
            "created_at": rfc3339(p.created_at),
            "active": p.active,
        })).collect::<Vec<_>>() }))
    })
    .await
}

/// `POST /admin/v1/partners/{id}/revoke-certificates`: a dual-control request.
pub(super) async fn revoke_partner_certificates(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(partner): Path<String>,
    b: Bytes,
) -> Response {
    let parsed = allow(&actor, &[CaOperator])
        .and_then(|()| body::<Empty>(&b).map(|_| ()))
        .and_then(|()| {
            ca_core::PartnerId::parse(&partner).map_err(|e| ApiError::invalid("id", e.to_string()))
        });
    let partner = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response_with(&id),
    };
    let trace = id.0.clone();
    answer(&id, StatusCode::ACCEPTED, move || {
        if api.store.partner(&partner)?.is_none() {
            return Err(ApiError::not_found(
                "id",
                format!("no registered partner \"{partner}\""),
            ));
        }
        let action = AdminAction::RevokePartnerCertificates {
            partner: partner.to_string(),
        };
        Ok(json!({ "request": request_json(&api.dual.request(Step { by: &actor, trace: &trace }, &action)?) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrlBody {
    #[serde(default)]
    delta: bool,
}

/// `POST /admin/v1/crl`: the issuing CA's full (or delta) CRL now.
pub(super) async fn publish_crl(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    b: Bytes,
) -> Response {
    let parsed = allow(&actor, &[CaOperator]).and_then(|()| body::<CrlBody>(&b));
    let delta = match parsed {
        Ok(b) => b.delta,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        let issuing = api.issuing.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                Some("ca"),
                "the issuing CA cannot publish CRLs (see the server log)",
            )
        })?;
        let kind = if delta {
            crl::CrlType::Delta
        } else {
            crl::CrlType::Full
        };
        let published = issuing
            .crl
            .publish(kind, &Principal::Operator(actor))
            .map_err(|e| ApiError::unavailable("CRL publication", &e))?;
        let s = &published.summary;
        let mut crl = json!({
            "ca": issuing.crl.issuer.as_str(),
            "kind": if delta { "delta" } else { "full" },
            "number": s.number,
            "entries": s.entries,
            "this_update": rfc3339(s.this_update),
            "next_update": rfc3339(s.next_update),
        });
        if let crl::PublishOutcome::Kept { published } = published.outcome {
            crl["superseded_by"] = json!(u64::try_from(published).unwrap_or(u64::MAX));
        }
        Ok(json!({ "crl": crl }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    ca: Option<String>,
}

/// `POST /admin/v1/ocsp-signer/renew`: a dual-control request.
pub(super) async fn renew_ocsp_signer(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    b: Bytes,
) -> Response {
    let parsed = allow(&actor, &[CaOperator]).and_then(|()| body::<RenewBody>(&b));
    let ca = match parsed {
        Ok(b) => b.ca,
        Err(e) => return e.into_response_with(&id),
    };
    let trace = id.0.clone();
    answer(&id, StatusCode::ACCEPTED, move || {
        let ca = match ca {
            Some(c) => {
                ca_core::IssuerId::parse(&c).map_err(|e| ApiError::invalid("ca", e.rule()))?
            }
            None => {
                crate::wiring::current_issuing(&api.cfg, api.store.as_ref())
                    .map_err(|e| ApiError::unavailable("the issuing CA", &e))?
                    .id
            }
        };
        let issuing = api
            .store
            .ca(&ca)?
            .is_some_and(|r| r.role == ca_core::store::CaRole::Issuing);
        if !issuing {
            return Err(ApiError::not_found("ca", format!("no issuing CA \"{ca}\"")));
        }
        let action = AdminAction::RenewOcspSigner { ca: ca.to_string() };
        Ok(json!({ "request": request_json(&api.dual.request(Step { by: &actor, trace: &trace }, &action)?) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloverBody {
    ca: Option<String>,
    new_id: Option<String>,
}

/// `POST /admin/v1/ca/rollover`: a dual-control request to roll an issuing CA over to a new
/// key (`ca` default the configured one). The new generation issues once `nesca serve`
/// starts again.
pub(super) async fn rollover_ca(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    b: Bytes,
) -> Response {
    let parsed = allow(&actor, &[CaOperator]).and_then(|()| body::<RolloverBody>(&b));
    let b = match parsed {
        Ok(b) => b,
        Err(e) => return e.into_response_with(&id),
    };
    let trace = id.0.clone();
    answer(&id, StatusCode::ACCEPTED, move || {
        let ca = match b.ca {
            Some(c) => {
                ca_core::IssuerId::parse(&c).map_err(|e| ApiError::invalid("ca", e.rule()))?
            }
            None => crate::wiring::current_issuing(&api.cfg, api.store.as_ref())
                .map_err(|e| ApiError::unavailable("the issuing CA", &e))?
                .id,
        };
                if let Some(n) = &b.new_id {
            let n =
                ca_core::IssuerId::parse(n).map_err(|e| ApiError::invalid("new_id", e.rule()))?;
            crate::commands::ca::check_generation_file_free(&api.cfg, &n)
                .map_err(|e| ApiError::new(StatusCode::CONFLICT, "conflict", Some("new_id"), e.to_string()))?;
        }
        let issuing = api
            .store
            .ca(&ca)?
            .is_some_and(|r| r.role == ca_core::store::CaRole::Issuing);
        if !issuing {
            return Err(ApiError::not_found("ca", format!("no issuing CA \"{ca}\"")));
        }
        let action = AdminAction::RolloverCa {
            ca: ca.to_string(),
            new_id: b.new_id,
        };
        Ok(json!({ "request": request_json(&api.dual.request(Step { by: &actor, trace: &trace }, &action)?) }))
    })
    .await
}

/// `GET /admin/v1/plugins`: the channel plugins this server loaded.
pub(super) async fn plugins(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
) -> Response {
    if let Err(e) = allow(&actor, &[CaOperator, Auditor]) {
        return e.into_response_with(&id);
    }
    answer(&id, StatusCode::OK, move || {
        Ok(json!({ "plugins": api.plugins }))
    })
    .await
}

/// `GET /admin/v1/institutions`: the institutions of the institutional channel.
pub(super) async fn institutions(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
) -> Response {
    if let Err(e) = allow(&actor, &[RaOfficer, Auditor]) {
        return e.into_response_with(&id);
    }
    answer(&id, StatusCode::OK, move || {
        let list = api.store.institutions()?;
        Ok(json!({ "institutions": list.iter().map(crate::commands::institution::to_json).collect::<Vec<_>>() }))
    })
    .await
}

/// `GET /admin/v1/institutions/{id}/applications?limit=`: the people its lists named and
/// where each application stands (never a password, code or word).
pub(super) async fn institution_applications(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path(institution): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let parsed = allow(&actor, &[RaOfficer, Auditor]).and_then(|()| {
        let q = query(raw, &["limit"])?;
        let inst = ca_core::institution::InstitutionId::parse(&institution)
            .map_err(|e| ApiError::invalid("id", e.to_string()))?;
        Ok((inst, limit(&q, 100, 1000)?))
    });
    let (institution, n) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        if api.store.institution(&institution)?.is_none() {
            return Err(ApiError::not_found(
                "id",
                format!("no institution \"{institution}\""),
            ));
        }
        let enrollments =
            nesca_ra::enrollment::Enrollments::new(api.store.clone(), crate::wiring::clock());
        let mut out = Vec::new();
        for pre in api
            .store
            .pre_applications(&institution)?
            .into_iter()
            .take(n as usize)
        {
            if let Some(view) = enrollments.view(&pre.id)? {
                out.push(crate::commands::applicant::to_json(&view));
            }
        }
        Ok(json!({ "applications": out }))
    })
    .await
}

/// `POST /admin/v1/institutions/{id}/lists/{sha256}/confirm` and `/reject`: an ra officer
/// saw (or never got) the paper of a wet-signed list held for confirmation, as `nesca
/// confirm-list` and `reject-list` do.
async fn held_list(
    api: Arc<AdminApi>,
    (actor, id): (OperatorActor, RequestId),
    (institution, sha): (String, String),
    b: Bytes,
    confirm: bool,
) -> Response {
    let parsed = allow(&actor, &[RaOfficer])
        .and_then(|()| body::<Empty>(&b).map(|_| ()))
        .and_then(|()| {
            ca_core::institution::InstitutionId::parse(&institution)
                .map_err(|e| ApiError::invalid("id", e.to_string()))
        });
    let institution = match parsed {
        Ok(i) => i,
        Err(e) => return e.into_response_with(&id),
    };
    answer(&id, StatusCode::OK, move || {
        let lists = nesca_ra::held_lists::HeldLists::new(api.store.clone(), crate::wiring::clock());
        let by = Principal::Operator(actor);
        let outcome = if confirm {
            let done = lists.confirm(&by, &institution, &sha)?;
            json!({ "status": "accepted", "invited": done.invited, "already_open": done.already_open })
        } else {
            json!({ "status": "rejected", "closed": lists.reject(&by, &institution, &sha)? })
        };
        let mut answer = json!({
            "institution": institution.as_str(),
            "file_sha256": sha.to_ascii_lowercase(),
        });
        if let (Some(all), Value::Object(more)) = (answer.as_object_mut(), outcome) {
            all.extend(more);
        }
        Ok(answer)
    })
    .await
}

pub(super) async fn confirm_list(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path((institution, sha)): Path<(String, String)>,
    b: Bytes,
) -> Response {
    held_list(api, (actor, id), (institution, sha), b, true).await
}

pub(super) async fn reject_list(
    State(api): Api,
    Extension(actor): Actor,
    Extension(id): Rid,
    Path((institution, sha)): Path<(String, String)>,
    b: Bytes,
) -> Response {
    held_list(api, (actor, id), (institution, sha), b, false).await
}
