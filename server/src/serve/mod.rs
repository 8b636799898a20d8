//! `nesca serve` (public endpoints, CRL schedule, OCSP pre-production) and `nesca ocsp`
//! (the responder alone, reading status from the same store).

mod crl_header;
pub(crate) mod crl_source;
mod expiry;
mod http;
mod lookup;
mod metrics;
mod rate_limit;
mod signer_watch;
mod status_source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ca_core::store::{CrlKind, Store};
use clap::Args;
use ocsp_responder::{Responder, ResponderConfig, ServedIssuer};

use crate::commands::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::listener;
use crate::wiring::{self, ServedCa};
use metrics::HttpMetrics;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
pub(crate) struct OcspArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// Listen here instead of ocsp.listen
    #[arg(long)]
    listen: Option<String>,
}

/// The OCSP responder for every issuing CA, as configured.
fn responder(cfg: &Loaded, store: Arc<dyn Store>, cas: &[ServedCa]) -> Result<Arc<Responder>> {
    let o = &cfg.raw.ocsp;
    let config = ResponderConfig {
        validity: Duration::from_secs(o.validity_seconds),
        refresh_before: Duration::from_secs(o.refresh_before_seconds),
        poll_interval: Duration::from_millis(o.poll_interval_ms),
        // Cut off from the store for ten polls (at least 15 s), a responder answers tryLater:
        // it could be calling good a certificate another node revoked meanwhile.
        stale_after: Duration::from_millis(o.poll_interval_ms.saturating_mul(10))
            .max(Duration::from_secs(15)),
        max_body: o.max_request_bytes,
        max_age_cap: Some(Duration::from_secs(o.max_age_seconds)),
        live_per_second: o.live_signatures_per_second,
        ..ResponderConfig::default()
    };
    let issuers = cas
        .iter()
        .map(|ca| ServedIssuer {
            id: ca.record.id.clone(),
            ca_cert: ca.cert.clone(),
            signer: ca.ocsp_signer.clone(),
            signer_cert_der: ca.ocsp_cert_der.clone(),
        })
        .collect();
    Ok(Responder::new(
        issuers,
        Arc::new(status_source::StoreStatus(store)),
        config,
        wiring::clock(),
    )?)
}

/// Parts both commands open: configuration, store, token, the issuing CAs.
struct Opened {
    cfg: Loaded,
    store: Arc<dyn Store>,
    cas: Vec<ServedCa>,
    renewal: crate::ocsp_signer::Renewal,
    /// Keeps the token's sessions open while the server runs.
    _hsm: hsm::Hsm,
}

fn open(config: &std::path::Path) -> Result<Opened> {
    let cfg = Loaded::read(config)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let hsm = wiring::open_hsm(&cfg)?;
    reconcile_reservations(&store)?;
    // A signer that is due, expired or missing is renewed before the responder starts.
    let renewal = crate::ocsp_signer::Renewal::of(&cfg)?;
    crate::ocsp_signer::renew_due_at_start(&renewal, &store, &hsm)?;
    let cas = wiring::served_cas(store.as_ref(), &hsm)?;
    Ok(Opened {
        cfg,
        store,
        cas,
        renewal,
        _hsm: hsm,
    })
}

/// Resolves reservations whose signing never completed, older than
/// `nesca_ra::reservations::STALE_RESERVATION_SECONDS`, as failed (by `serve-start`), before
/// anything answers OCSP: such a serial is then answered as never issued.
fn reconcile_reservations(store: &Arc<dyn Store>) -> Result<()> {
    let failed = nesca_ra::reservations::fail_stale_reservations(store, wiring::clock().as_ref())?;
    for (issuer, serial) in &failed {
        tracing::warn!(%issuer, %serial, "a reservation whose signing never completed was resolved as failed");
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nesca-http")
        .build()
        .map_err(|e| CliError::io("cannot start", std::path::Path::new("the async runtime"))(e))
}

async fn bind(field: &str, addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::config(field, format!("cannot listen on {addr}: {e}")))
}

/// The bound address (the real port when the configuration says port 0).
fn local_addr(listener: &tokio::net::TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `listeners` until SIGTERM/SIGINT: flips `stop` (the listeners stop accepting and
/// background work ends), then waits for the listeners to finish their in-flight requests,
/// for at most `grace`.
async fn serve_until_terminated(
    listeners: impl std::future::Future<Output = ()>,
    stop: tokio::sync::watch::Sender<bool>,
    grace: Duration,
) {
    let mut stopped = stop.subscribe();
    let signal = async move {
        termination().await;
        tracing::info!("termination signal: finishing in-flight requests");
        let _ = stop.send(true);
        // The sender stays alive: a dropped one would read as a stop to every receiver
        // anyway, but the deadline below must see this one.
        std::future::pending::<()>().await;
    };
    let deadline = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        _ = listeners => {}
        _ = signal => {}
        _ = deadline => {
            tracing::warn!("shutdown grace elapsed; closing remaining connections");
        }
    }
}

/// An mTLS listener (the channels', the admin API's): its configuration key, what it
/// serves, its address, TLS acceptor and routes.
/// How a TLS listener authenticates its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsKind {
    /// Client certificates required (the channels, the admin API): announced `mTLS`.
    Mutual,
    /// No client certificate (the portal): announced `TLS`.
    ServerOnly,
}

impl std::fmt::Display for TlsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsKind::Mutual => "mTLS",
            TlsKind::ServerOnly => "TLS",
        })
    }
}

pub(crate) struct TlsListener {
    pub(crate) field: &'static str,
    pub(crate) what: &'static str,
    /// Whether clients present certificates, for the announcement.
    pub(crate) tls: TlsKind,
    pub(crate) listen: String,
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) app: axum::Router,
}

/// Binds, says where it listens (`nesca COMMAND: listening on http://ADDR`, then one line per
/// mTLS listener), runs the OCSP refresher beside the HTTP server, and returns after a clean
/// shutdown. Every listener is served under the `[server]` limits.
fn run_http(
    command: &str,
    (field, listen): (&'static str, &str),
    app: axum::Router,
    tls: Vec<TlsListener>,
    responder: &Arc<Responder>,
    server: &crate::config::ServerSection,
) -> Result<()> {
    let limits = listener::Limits::of(server);
    let grace = Duration::from_secs(server.shutdown_grace_seconds);
    let rt = runtime()?;
    let result = rt.block_on(async {
        let listener = bind(field, listen).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        // All bound before anything is announced: the first line says the server is up.
        let mut bound = Vec::with_capacity(tls.len());
        for t in tls {
            bound.push((bind(t.field, &t.listen).await?, t));
        }
        let refresher = tokio::spawn(responder.clone().run_refresher(stopped.clone()));
        emit(&format!(
            "nesca {command}: listening on http://{}\n",
            local_addr(&listener)
        ))?;
        let mut servers = Vec::with_capacity(bound.len() + 1);
        for (tls_listener, t) in bound {
            emit(&format!(
                "nesca {command}: {} ({}) on https://{}\n",
                t.what,
                t.tls,
                local_addr(&tls_listener)
            ))?;
            servers.push(tokio::spawn(listener::mtls::serve(
                t.field,
                tls_listener,
                t.acceptor,
                t.app,
                limits.clone(),
                stopped.clone(),
            )));
        }
        servers.push(tokio::spawn(listener::serve(
            field,
            listener,
            limits,
            listener::plain(app),
            stopped,
        )));
        let listeners = async move {
            for s in servers {
                let _ = s.await;
            }
        };
        serve_until_terminated(listeners, stop, grace).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), refresher).await;
        Ok(())
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

fn with_metrics(app: axum::Router, m: &Arc<HttpMetrics>) -> axum::Router {
    app.layer(axum::middleware::from_fn_with_state(
        m.clone(),
        http::observe,
    ))
}

pub(crate) fn serve(a: ServeArgs) -> Result<()> {
    let Opened {
        cfg,
        store,
        cas,
        renewal,
        _hsm,
    } = open(&a.config)?;
    let metrics = Arc::new(HttpMetrics::default());
    let mut issuers = cas
        .iter()
        .map(|ca| wiring::crl_issuer(&cfg, store.clone(), ca))
        .collect::<Result<Vec<_>>>()?;
    // The root's CRL (ARL), at the URL the issuing CA's certificate names.
    issuers.extend(wiring::root_crl_issuers(&cfg, store.clone(), &_hsm)?);
    for i in &issuers {
        for (kind, name) in [(CrlKind::Full, "full"), (CrlKind::Delta, "delta")] {
            if let Some(r) = store.latest_crl(&i.issuer, kind)? {
                metrics.crl_published(i.issuer.as_str(), name, r.this_update);
            }
        }
    }
    let responder = responder(&cfg, store.clone(), &cas)?;
    let stop_crl = Arc::new(AtomicBool::new(false));
    let signer_thread =
        spawn_signer_watch(&cfg, renewal, &store, &_hsm, &responder, &cas, &stop_crl)?;
    let audit_thread = spawn_audit_checkpoints(&cfg, &store, &_hsm, &stop_crl)?;
    let host = channel_host(&cfg, store.clone(), &cas, &_hsm)?;
    // Nothing is being issued yet: an application still pending was cut off by a stop.
    let abandoned = store.abandon_pending_applications(
        "interrupted: nesca stopped while this application was being issued; apply again",
        &ca_core::Principal::System(ca_core::SystemTask::Startup),
        crate::wiring::clock().now_unix(),
    )?;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "channel applications cut off by a stop were marked refused"
        );
    }
    let plugins = crate::channels::load_all(&cfg, host.clone())?;
    // What the admin API's `GET /admin/v1/plugins` shows of them.
    let plugin_status: Vec<serde_json::Value> = plugins
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.plugin.name(),
                "version": c.plugin.version(),
                "abi_version": c.plugin.abi_version(),
                "path": c.plugin.path().display().to_string(),
                "max_body_bytes": c.max_body,
            })
        })
        .collect();
    let public = Arc::new(http::Public {
        crl_dir: cfg.path(&cfg.raw.crl.dir),
        ca_certs: ca_certificates(store.as_ref())?,
        metrics: metrics.clone(),
        extra_metrics: Some(ocsp_metrics(&responder, store.clone())),
        health: health(store.clone()),
    });
    let (public_app, channel_listener) = mount_channels(
        &cfg,
        &cas,
        store.clone(),
        crate::channels::router(plugins),
        responder
            .router()
            .merge(http::router(public))
            .merge(lookup::router(
                store.clone(),
                cfg.raw.server.lookup_per_minute,
            )),
        &metrics,
    )?;
    let app = with_metrics(public_app, &metrics);
    let listen = cfg.raw.server.listen.clone();
    let portal_listener = crate::portal::listener(&cfg, store.clone())?;
    let (admin_listener, admin_thread) = match crate::admin::listener(
        &cfg,
        store.clone(),
        (&cas, &_hsm),
        plugin_status,
        stop_crl.clone(),
    )? {
        Some((listener, thread)) => (Some(listener), Some(thread)),
        None => (None, None),
    };

    // CRLs: due ones now (a first full CRL, then its delta), then on the schedule.
    let crl_thread = {
        let stop = stop_crl.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("nesca-crl".into())
            .spawn(move || crl_loop(issuers, metrics, stop))
            .map_err(|e| CliError::io("cannot start", std::path::Path::new("the CRL thread"))(e))?
    };

    // Commitments not signed by their deadline: revoked on the sweep's schedule — also when no
    // channel is configured any more, so that a certificate issued while one was never stays
    // suspended past its deadline.
    let sweep_thread = match &host.issuance {
        Some(_) => {
            let stop = stop_crl.clone();
            let host = host.clone();
            let every = Duration::from_secs(cfg.raw.channels.commitment_sweep_seconds);
            Some(
                std::thread::Builder::new()
                    .name("nesca-commitments".into())
                    .spawn(move || commitment_loop(&host, every, &stop))
                    .map_err(|e| {
                        CliError::io(
                            "cannot start",
                            std::path::Path::new("the commitment thread"),
                        )(e)
                    })?,
            )
        }
        _ => None,
    };

    // Notifications (access passwords): delivered on their schedule, retried until sent.
    let outbox_thread = {
        let stop = stop_crl.clone();
        let outbox = crate::commands::outbox::configured(&cfg, store.clone())?;
        let lease = task_lease(&store, "outbox");
        let every = Duration::from_secs(cfg.raw.outbox.interval_seconds);
        std::thread::Builder::new()
            .name("nesca-outbox".into())
            .spawn(move || outbox_loop(&outbox, &lease, every, &stop))
            .map_err(|e| {
                CliError::io("cannot start", std::path::Path::new("the outbox thread"))(e)
            })?
    };

    // Reservations a stopped process (another node) left: resolved while serving, as at start,
    // by one node at a time.
    let reservation_thread = {
        let stop = stop_crl.clone();
        let store = store.clone();
        let lease = task_lease(&store, "reservation-sweep");
        std::thread::Builder::new()
            .name("nesca-reservations".into())
            .spawn(move || {
                leased_every_until(&lease, RESERVATION_SWEEP, &stop, || {
                    match nesca_ra::reservations::fail_stale_reservations_by(
                        &store,
                        wiring::clock().as_ref(),
                        ca_core::SystemTask::ReservationSweep,
                    ) {
                        Ok(failed) => {
                            for (issuer, serial) in &failed {
                                tracing::warn!(%issuer, %serial, "a reservation whose signing never completed was resolved as failed");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "reservation sweep failed; will retry"),
                    }
                })
            })
            .map_err(|e| {
                CliError::io("cannot start", std::path::Path::new("the reservation thread"))(e)
            })?
    };

    // Approved institutional applications: produced on their schedule (renewals when their
    // window comes).
    let production_thread = match (&cfg.raw.production, &host.issuance) {
        (Some(p), Some(iss)) => {
            let production = crate::production::configured(
                &cfg,
                store.clone(),
                iss.nes.ca.clone(),
                iss.nes.hsm.clone(),
            )?;
            let stop = stop_crl.clone();
            let every = Duration::from_secs(p.interval_seconds);
            let lease = task_lease(&store, "production");
            production.map(|production| {
                std::thread::Builder::new()
                    .name("nesca-production".into())
                    .spawn(move || {
                        leased_every_until(&lease, every, &stop, || {
                            if let Err(e) = production.run_due(1_000) {
                                tracing::warn!(error = %e, "production pass failed; will retry");
                            }
                        })
                    })
                    .map_err(|e| CliError::io("cannot start", std::path::Path::new("the production thread"))(e))
            }).transpose()?
        }
        _ => None,
    };

    let result = run_http(
        "serve",
        ("server.listen", &listen),
        app,
        channel_listener
            .into_iter()
            .chain(admin_listener)
            .chain(portal_listener)
            .collect(),
        &responder,
        &cfg.raw.server,
    );
    stop_crl.store(true, Ordering::Relaxed);
    let _ = crl_thread.join();
    let _ = signer_thread.join();
    let _ = audit_thread.join();
    if let Some(t) = sweep_thread {
        let _ = t.join();
    }
    let _ = outbox_thread.join();
    let _ = reservation_thread.join();
    if let Some(t) = admin_thread {
        let _ = t.join();
    }
    if let Some(t) = production_thread {
        let _ = t.join();
    }
    result
}

/// Delivers due outbox messages every `every`, until `stop`, while this node holds the
/// outbox's lease.
fn outbox_loop(
    outbox: &nesca_ra::outbox::Outbox,
    lease: &nesca_ra::leases::Lease,
    every: Duration,
    stop: &AtomicBool,
) {
    let mut reminded: Option<std::time::Instant> = None;
    leased_every_until(lease, every, stop, || {
        // Expiry reminders are queued hourly (each once per certificate, band and recipient),
        // then delivered with everything else that is due; the portal's spent counters and
        // sessions go at the same time.
        if reminded.is_none_or(|t| t.elapsed() >= EXPIRY_REMINDER_SWEEP) {
            match outbox.queue_expiry_reminders() {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "expiry reminders queued"),
                Err(e) => {
                    tracing::warn!(error = %e, "queueing expiry reminders failed; will retry")
                }
            }
            if let Err(e) = outbox.sweep_portal() {
                tracing::warn!(error = %e, "sweeping the portal's counters and sessions failed; will retry");
            }
            reminded = Some(std::time::Instant::now());
        }
        if let Err(e) = outbox.deliver_due(1_000) {
            tracing::warn!(error = %e, "outbox delivery failed; will retry");
        }
    })
}

/// How often `nesca serve` queues the expiry reminders due (and sweeps the portal's records).
const EXPIRY_REMINDER_SWEEP: Duration = Duration::from_secs(3_600);

/// How often `nesca serve` resolves reservations left by stopped processes.
const RESERVATION_SWEEP: Duration = Duration::from_secs(60);

/// How long a node's lease on a background task runs: after its node stops (dies), another
/// takes the task over within about this long.
const TASK_LEASE: Duration = Duration::from_secs(20);
/// How often the holder renews its lease (and the others ask for it).
const TASK_LEASE_RENEW: Duration = Duration::from_secs(5);

/// A background task's lease in `store`, held by this node while it runs the task.
fn task_lease(store: &Arc<dyn Store>, task: &str) -> nesca_ra::leases::Lease {
    nesca_ra::leases::Lease::new(store.clone(), wiring::clock(), task.to_owned(), TASK_LEASE)
}

/// [`every_until`] on one node at a time: `work` runs only while this node holds `lease`.
/// A thread of its own renews (or asks for) the lease every [`TASK_LEASE_RENEW`], also while
/// `work` runs, so a pass longer than [`TASK_LEASE`] (an outbox of slow relays, a production
/// run) keeps it and no other node starts the same pass meanwhile. The lease is given up at
/// `stop`.
fn leased_every_until(
    lease: &nesca_ra::leases::Lease,
    every: Duration,
    stop: &AtomicBool,
    mut work: impl FnMut(),
) {
    let held = AtomicBool::new(false);
    // When the lease was last had, in ms since `start`: a renewal stuck on the database
    // (longer than the lease runs) must not leave `held` saying yes while another node
    // takes the task over.
    let start = std::time::Instant::now();
    let had_ms = std::sync::atomic::AtomicU64::new(0);
    let still_ours = || {
        let had = Duration::from_millis(had_ms.load(Ordering::Relaxed));
        held.load(Ordering::Relaxed) && start.elapsed() < had + TASK_LEASE - TASK_LEASE_RENEW
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            every_until(TASK_LEASE_RENEW, stop, || {
                let asked = start.elapsed();
                let now_held = lease.hold().unwrap_or_else(|e| {
                    tracing::warn!(task = lease.name(), error = %e, "task lease not renewed; the task waits");
                    false
                });
                if now_held {
                    had_ms.store(
                        u64::try_from(asked.as_millis()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                }
                if held.swap(now_held, Ordering::Relaxed) != now_held {
                    tracing::info!(task = lease.name(), held = now_held, "task lease changed hands");
                }
            })
        });
        let mut work_at = std::time::Instant::now();
        every_until(Duration::from_millis(200), stop, || {
            if still_ours() && std::time::Instant::now() >= work_at {
                work();
                work_at = std::time::Instant::now() + every;
            }
        });
    });
    if held.load(Ordering::Relaxed) {
        if let Err(e) = lease.release() {
            tracing::warn!(task = lease.name(), error = %e, "task lease not given up; it runs out by itself");
        }
    }
}

/// Runs `work` now and then every `every`, checking `stop` often so a shutdown is not held up.
pub(crate) fn every_until(every: Duration, stop: &AtomicBool, mut work: impl FnMut()) {
    const TICK: Duration = Duration::from_millis(200);
    let mut next = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if std::time::Instant::now() >= next {
            work();
            next = std::time::Instant::now() + every;
        }
        std::thread::sleep(TICK);
    }
}

/// Revokes overdue commitments and ends wet-signed lists held too long, every `every`, until
/// `stop`. A failed sweep is logged and tried again at the next turn (nothing is lost: the
/// store still holds them as pending).
fn commitment_loop(host: &crate::channels::ChannelHost, every: Duration, stop: &AtomicBool) {
    let Some(iss) = &host.issuance else { return };
    let held_lists =
        nesca_ra::held_lists::HeldLists::new(host.store.clone(), crate::wiring::clock());
    let lease = task_lease(&host.store, "commitment-sweep");
    leased_every_until(&lease, every, stop, || {
        if let Err(e) = iss.commitments.expire_due() {
            tracing::warn!(error = %e, "commitment deadline sweep failed; will retry");
        }
        if let Err(e) = held_lists.expire_due() {
            tracing::warn!(error = %e, "held-list expiry failed; will retry");
        }
    })
}

pub(crate) fn ocsp(a: OcspArgs) -> Result<()> {
    let Opened {
        cfg,
        store,
        cas,
        renewal,
        _hsm,
    } = open(&a.config)?;
    let (field, listen) = match a.listen {
        Some(l) => ("listen", l),
        None => ("ocsp.listen", cfg.raw.ocsp.listen.clone()),
    };
    let metrics = Arc::new(HttpMetrics::default());
    let responder = responder(&cfg, store.clone(), &cas)?;
    let stop = Arc::new(AtomicBool::new(false));
    let signer_thread = spawn_signer_watch(&cfg, renewal, &store, &_hsm, &responder, &cas, &stop)?;
    let public = Arc::new(http::Public {
        crl_dir: cfg.path(&cfg.raw.crl.dir),
        ca_certs: HashMap::new(),
        metrics: metrics.clone(),
        extra_metrics: Some(ocsp_metrics(&responder, store.clone())),
        health: health(store.clone()),
    });
    let app = with_metrics(
        responder.router().merge(http::health_router(public)),
        &metrics,
    );
    let result = run_http(
        "ocsp",
        (field, &listen),
        app,
        Vec::new(),
        &responder,
        &cfg.raw.server,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = signer_thread.join();
    result
}

/// Checkpoints the audit chain (`crate::audit_checkpoint`) once `[audit]
/// checkpoint_every_records` records came since the last, or `checkpoint_every_seconds`
/// passed with at least one, until `stop`.
fn spawn_audit_checkpoints(
    cfg: &Loaded,
    store: &Arc<dyn Store>,
    hsm: &hsm::Hsm,
    stop: &Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let hsm = hsm.clone();
    let every_records =
        i64::try_from(cfg.raw.audit.checkpoint_every_records.max(1)).unwrap_or(i64::MAX);
    let every = Duration::from_secs(cfg.raw.audit.checkpoint_every_seconds.max(1));
    // The thread's own copy of the configuration (`Loaded` is not shared).
    let cfg = Loaded::read(&cfg.file)?;
    let (store, stop) = (store.clone(), stop.clone());
    // One node at a time makes the audit key and checkpoints, appending to its anchor file
    // (docs/multi-node.md: the anchor of several nodes).
    let lease = task_lease(&store, "audit-checkpoint");
    std::thread::Builder::new()
        .name("nesca-audit".into())
        .spawn(move || {
            let last_checkpoint = |store: &Arc<dyn Store>| {
                store
                    .audit_checkpoints()
                    .ok()
                    .and_then(|c| c.last().map(|c| c.seq))
                    .unwrap_or(0)
            };
            // Read once, then kept here (another process's checkpoint is met as a refusal).
            let mut last = last_checkpoint(&store);
            let mut last_at = std::time::Instant::now();
            // Made at the first checkpoint: a key that exists means checkpoints were made.
            let mut key = None;
            leased_every_until(&lease, Duration::from_secs(1), &stop, || {
                let head = store.audit_head().ok().flatten().map(|h| h.0).unwrap_or(0);
                let due =
                    head - last >= every_records || (head > last && last_at.elapsed() >= every);
                if !due {
                    return;
                }
                last_at = std::time::Instant::now();
                if key.is_none() {
                    match crate::audit_checkpoint::audit_key(&cfg, &hsm) {
                        Ok(k) => key = Some(k),
                        Err(e) => {
                            tracing::error!(error = %e, "no audit key; will retry");
                            return;
                        }
                    }
                }
                let Some(key) = &key else { return };
                match crate::audit_checkpoint::checkpoint(&cfg, &store, &hsm, key) {
                    Ok(Some(cp)) => last = cp.seq,
                    Ok(None) | Err(CliError::Ca(ca_core::CaError::Conflict { .. })) => {
                        last = last_checkpoint(&store)
                    }
                    Err(e) => {
                        last = last_checkpoint(&store);
                        tracing::error!(error = %e, "audit checkpoint failed; will retry");
                    }
                }
            })
        })
        .map_err(|e| CliError::io("cannot start", std::path::Path::new("the audit thread"))(e))
}

/// Starts the watch that keeps the served CAs' OCSP signers current (`signer_watch`).
fn spawn_signer_watch(
    cfg: &Loaded,
    renewal: crate::ocsp_signer::Renewal,
    store: &Arc<dyn Store>,
    hsm: &hsm::Hsm,
    responder: &Arc<Responder>,
    cas: &[ServedCa],
    stop: &Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let warn = signer_watch::Warnings {
        certificate_seconds: i64::from(cfg.raw.server.warn_certificate_expiry_days) * 86_400,
        crl_seconds: i64::try_from(cfg.raw.server.warn_crl_next_update_seconds).unwrap_or(i64::MAX),
    };
    signer_watch::SignerWatch::new(
        renewal,
        store.clone(),
        hsm.clone(),
        responder.clone(),
        cas,
        warn,
    )
    .spawn(
        Duration::from_secs(cfg.raw.ocsp.signer_check_seconds),
        stop.clone(),
    )
    .map_err(|e| {
        CliError::io(
            "cannot start",
            std::path::Path::new("the OCSP signer thread"),
        )(e)
    })
}

/// Where the channels are served: on their mTLS listener when `[channels] listen` is set,
/// else on the public listener (development). Returns the public routes and the listener.
fn mount_channels(
    cfg: &Loaded,
    cas: &[ServedCa],
    store: Arc<dyn Store>,
    channels: axum::Router,
    public_app: axum::Router,
    metrics: &Arc<HttpMetrics>,
) -> Result<(axum::Router, Option<TlsListener>)> {
    let c = &cfg.raw.channels;
    let (Some(listen), Some(cert), Some(key)) = (&c.listen, &c.tls_cert, &c.tls_key) else {
        if !cfg.raw.plugins.is_empty() {
            // Plain HTTP has no client certificate: every channel would be open to anyone
            // who reaches server.listen. Only on the operator's explicit word.
            if !c.allow_plain_http {
                return Err(CliError::config(
                    "channels.listen",
                    "plugins are configured but no mTLS listener: set listen, tls_cert and tls_key (or allow_plain_http = true, for development only: anyone reaching server.listen could then use every channel)",
                ));
            }
            tracing::warn!("[channels] allow_plain_http: channel plugins are served on server.listen without TLS or client certificates (development only)");
        }
        return Ok((public_app.merge(channels), None));
    };
    // Partner certificates of every generation of the issuing CA are trusted (one from
    // before a key rollover authenticates until it expires).
    let generations: Vec<(ca_core::IssuerId, Vec<u8>)> =
        wiring::configured_generations(cfg, store.as_ref(), cas)?
            .into_iter()
            .map(|c| (c.record.id.clone(), c.record.cert_der.clone()))
            .collect();
    let check = Arc::new(nesca_ra::partners::ChannelClients::new(
        store.clone(),
        generations.iter().map(|(id, _)| id.clone()).collect(),
        wiring::clock(),
    ));
    let acceptor = listener::mtls::acceptor(
        "channels",
        (&cfg.path(cert), &cfg.path(key)),
        &generations,
        check,
    )?;
    // Every request's client certificate is checked again: the handshake's verdict does not
    // outlive a revocation or a partner's deactivation on a kept-alive connection.
    let clients = nesca_ra::partners::ChannelClients::new(
        store,
        generations.into_iter().map(|(id, _)| id).collect(),
        wiring::clock(),
    );
    let channels = crate::channels::rechecking_clients(channels, clients);
    Ok((
        public_app,
        Some(TlsListener {
            field: "channels.listen",
            what: "channels",
            tls: TlsKind::Mutual,
            listen: listen.clone(),
            acceptor,
            app: with_metrics(channels, metrics),
        }),
    ))
}

/// Finds out at start, not at a partner's first card key, whether the token wraps card keys
/// exactly as RFC 5649: `hsm::Hsm::aes_key_wrap_check` logs what it found (a defect with the
/// `[hsm] aes_key_wrap_repair` it needs) and keeps the answer. Nothing is refused here; a
/// check that fails is made again at the first card key.
fn check_card_key_wrapping(hsm: &hsm::Hsm) {
    if let Err(e) = hsm.aes_key_wrap_check() {
        tracing::warn!(
            error = %e,
            "could not check the PKCS#11 module's AES key wrap with padding; checked again at the first card key"
        );
    }
}

/// The host API the channel plugins get: issuance by the configured issuing CA, lifecycle
/// requests and lookups on the store.
fn channel_host(
    cfg: &Loaded,
    store: Arc<dyn Store>,
    cas: &[ServedCa],
    hsm: &hsm::Hsm,
) -> Result<Arc<crate::channels::ChannelHost>> {
    use ca_core::engine::{Engine, SigningCa};
    let clock = wiring::clock();
    // A revoked issuing CA issues nothing: the channels still answer lookups and holders'
    // requests, and OCSP and CRLs go on, but no certificate is issued until a new generation.
    let ca = match wiring::configured_ca(cfg, store.as_ref(), cas) {
        Ok(ca) => ca,
        Err(e) => {
            tracing::error!(error = %e, "the channels issue nothing");
            return Ok(Arc::new(crate::channels::ChannelHost {
                enrollments: nesca_ra::enrollment::Enrollments::new(store.clone(), clock.clone()),
                store: store.clone(),
                lifecycle: nesca_ra::lifecycle::Lifecycle::new(store, clock),
                issuance: None,
            }));
        }
    };
    let chain_der = wiring::chain_der(cfg, store.as_ref(), ca.record.cert_der.clone())?;
    check_card_key_wrapping(hsm);
    Ok(Arc::new(crate::channels::ChannelHost {
        enrollments: nesca_ra::enrollment::Enrollments::new(store.clone(), clock.clone()),
        store: store.clone(),
        lifecycle: nesca_ra::lifecycle::Lifecycle::new(store.clone(), clock.clone()),
        issuance: Some(crate::channels::Issuing {
            nes: nesca_ra::nes::NesIssuance {
                engine: Engine::new(store.clone(), clock.clone()),
                ca: SigningCa::new(
                    ca.record.id.clone(),
                    ca.record.cert_der.clone(),
                    ca.ca_signer.clone(),
                    Some(wiring::urls_of(cfg, &ca.record.id)?),
                )?,
                nes: cfg.nes.clone(),
                hsm: hsm.clone(),
                wrap_policy: cfg.wrap_policy(),
                store: store.clone(),
            },
            chain_der,
            commitments: nesca_ra::commitment::Commitments::new(store, clock),
            commitment_deadline_seconds: cfg.raw.channels.commitment_deadline_seconds as i64,
        }),
    }))
}

/// The responder's metrics, and how long the CA's own certificates have left (`expiry`).
fn ocsp_metrics(responder: &Arc<Responder>, store: Arc<dyn Store>) -> http::MetricsText {
    let r = responder.clone();
    Arc::new(move |out: &mut String| {
        r.metrics().render_prometheus(out);
        let now = crate::wiring::clock().now_unix();
        let read = expiry::certificates_left(store.as_ref(), now)
            .map(|left| expiry::render(&left, out))
            .and_then(|()| expiry::render_crls(store.as_ref(), now, out));
        if let Err(e) = read {
            tracing::warn!(error = %e, "CA certificates and CRLs not read for /metrics");
        }
    })
}

/// `/healthz`: whether the store answers. Anyone may ask, so one check runs at a time and
/// its answer serves every request of the next second (a flood of health checks does not
/// take the readers' connections from OCSP), and the answer names no database, user or
/// server message (those go to the log).
fn health(store: Arc<dyn Store>) -> http::HealthCheck {
    const FRESH: Duration = Duration::from_secs(1);
    let last: std::sync::Mutex<Option<(std::time::Instant, bool)>> = std::sync::Mutex::new(None);
    Arc::new(move || {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        let healthy = match *last {
            Some((at, healthy)) if at.elapsed() < FRESH => healthy,
            _ => {
                let healthy = match store.cas() {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "health check: the store does not answer");
                        false
                    }
                };
                *last = Some((std::time::Instant::now(), healthy));
                healthy
            }
        };
        if healthy {
            Ok(())
        } else {
            Err("the store does not answer".into())
        }
    })
}

/// `{id}.crt` → DER, for every CA in the store (root included: its certificate is the
/// caIssuers of the issuing CA's).
fn ca_certificates(store: &dyn Store) -> Result<HashMap<String, Vec<u8>>> {
    Ok(store
        .cas()?
        .into_iter()
        .map(|ca| (format!("{}.crt", ca.id), ca.cert_der))
        .collect())
}

/// Publishes due CRLs every second until stopped. A failure is logged and counted and tried
/// again on the next tick; the server keeps serving the last published CRLs.
fn crl_loop(issuers: Vec<crl::CrlIssuer>, metrics: Arc<HttpMetrics>, stop: Arc<AtomicBool>) {
    const TICK: Duration = Duration::from_secs(1);
    // After a failure, wait before the next try so a broken HSM is not hammered.
    const BACKOFF_TICKS: u32 = 10;
    let mut wait = vec![0u32; issuers.len()];
    while !stop.load(Ordering::Relaxed) {
        for (i, issuer) in issuers.iter().enumerate() {
            if wait[i] > 0 {
                wait[i] -= 1;
                continue;
            }
            match issuer.publish_due(&ca_core::Principal::System(
                ca_core::SystemTask::CrlSchedule,
            )) {
                Ok(done) => {
                    // A CRL another publisher superseded was not published: not counted.
                    for p in done
                        .into_iter()
                        .filter(|p| p.outcome == crl::PublishOutcome::Replaced)
                    {
                        let kind = match p.summary.kind {
                            crl::CrlType::Full => "full",
                            crl::CrlType::Delta => "delta",
                        };
                        metrics.crl_published(issuer.issuer.as_str(), kind, p.summary.this_update);
                    }
                }
                Err(e) => {
                    metrics.crl_signing_error();
                    tracing::warn!(ca = %issuer.issuer, error = %e, "CRL generation failed; will retry");
                    wait[i] = BACKOFF_TICKS;
                }
            }
        }
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
mod lease_tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use ca_core::store::Store;

    /// Two nodes running the same leased task over one store: only the lease's holder works,
    /// never both at once; when it stops (giving the lease up) the other takes the task over.
    #[test]
    fn a_leased_task_runs_on_one_node_at_a_time_and_moves_when_it_stops() {
        let dir = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .unwrap();
        let store: Arc<dyn Store> =
            Arc::new(ca_core::store::SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let clock: Arc<dyn ca_core::Clock> = Arc::new(ca_core::SystemClock);
        let lease = |node: &str| {
            nesca_ra::leases::Lease::new(
                store.clone(),
                clock.clone(),
                "outbox".into(),
                Duration::from_secs(20),
            )
            .held_as(format!("{node}:unknown:1:0"))
        };
        let (a, b) = (lease("node-a"), lease("node-b"));
        let working = AtomicBool::new(false);
        let overlaps = AtomicUsize::new(0);
        let runs = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let (stop_a, stop_b) = (AtomicBool::new(false), AtomicBool::new(false));
        let node = |lease: &nesca_ra::leases::Lease, stop: &AtomicBool, runs: &AtomicUsize| {
            super::leased_every_until(lease, Duration::from_millis(50), stop, || {
                if working.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                working.store(false, Ordering::SeqCst);
            })
        };
        let while_a_held = std::thread::scope(|s| {
            s.spawn(|| node(&a, &stop_a, &runs[0]));
            std::thread::sleep(Duration::from_millis(300));
            s.spawn(|| node(&b, &stop_b, &runs[1]));
            std::thread::sleep(Duration::from_millis(1500));
            let while_a_held = (
                runs[0].load(Ordering::SeqCst),
                runs[1].load(Ordering::SeqCst),
            );
            stop_a.store(true, Ordering::SeqCst);
            // A gives it up as it stops; B asks again within TASK_LEASE_RENEW and takes it.
            let deadline = Instant::now() + super::TASK_LEASE_RENEW * 3;
            while runs[1].load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            stop_b.store(true, Ordering::SeqCst);
            while_a_held
        });
        // Node A held it: B had not run once.
        assert!(while_a_held.0 > 0, "node A never ran the task");
        assert_eq!(while_a_held.1, 0, "both nodes ran the task");
        assert!(
            runs[1].load(Ordering::SeqCst) > 0,
            "node B never took the task over"
        );
        assert_eq!(
            overlaps.load(Ordering::SeqCst),
            0,
            "the task ran on both nodes at once"
        );
    }
}
