//! Loads the real test plugins (cdylibs built from plugins/test-plugins) through the host-side
//! loader, as the server does.
//!
//! The .so files are built by `cargo test` itself: they are dev-dependencies of this package, so
//! Cargo builds them (all crate types, the cdylib included) into target/<profile>/deps/ before
//! this test runs. `cargo build --workspace` also copies them to target/<profile>/.
//!
//! Every test loads its own copy of a plugin file: the dynamic loader hands back the same library
//! for the same file, and a plugin initialises once per process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nesca_plugin_api::host_api::{self, CertificateInfo, LookupCertificate};
use nesca_plugin_api::{
    decode, encode, CallLimits, HostApi, HostError, HostErrorCode, HttpRequest, HttpResponse,
    LoadedPlugin, LogLevel, PluginError, ABI_VERSION, ENTRY_SYMBOL,
};
use serde_json::{json, Value};
use tempfile::TempDir;

/// target/<profile>, from this test binary's path (target/<profile>/deps/load-…).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_owned()
}

/// The built test plugin `stem` (echo, panicking, wrong_abi, hanging).
fn built_plugin(stem: &str) -> PathBuf {
    let file = format!(
        "{}nesca_test_plugin_{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let dir = target_dir();
    for candidate in [dir.join("deps").join(&file), dir.join(&file)] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "test plugin {file} is neither in {0}/deps nor in {0}: run `cargo build --workspace` \
         (or `cargo test -p nesca-plugin-api`, which builds it)",
        dir.display()
    );
}

/// A private copy of test plugin `stem`, so that this load gets a library of its own.
struct Copy {
    _dir: TempDir,
    path: PathBuf,
}

fn copy_of(stem: &str) -> Copy {
    let source = built_plugin(stem);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(source.file_name().expect("file name"));
    std::fs::copy(&source, &path).expect("copy the test plugin");
    Copy { _dir: dir, path }
}

/// A HostApi that knows one certificate and records what plugins ask and log.
#[derive(Default)]
struct FakeHost {
    calls: Mutex<Vec<(String, String, Vec<u8>)>>,
    logs: Mutex<Vec<(String, LogLevel, String)>>,
}

fn known_certificate() -> CertificateInfo {
    CertificateInfo {
        serial: "0a1b".into(),
        status: "active".into(),
        subject: "CN=Test Person,SERIALNUMBER=TCKN10000000146".into(),
        tckn: Some("10000000146".into()),
        not_before: 1_700_000_000,
        not_after: 1_800_000_000,
        certificate_der: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    }
}

impl HostApi for FakeHost {
    fn call(&self, plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, HostError> {
        self.calls
            .lock()
            .unwrap()
            .push((plugin.into(), method.into(), request_json.into()));
        match method {
            host_api::LOOKUP_CERTIFICATE => {
                let request: LookupCertificate = decode(request_json)
                    .map_err(|e| HostError::invalid("request", e.to_string()))?;
                if request.serial == "0a1b" {
                    encode(&known_certificate()).map_err(|e| HostError::internal(e.to_string()))
                } else {
                    Err(HostError::without_field(
                        HostErrorCode::NotFound,
                        format!("no certificate with serial {}", request.serial),
                    ))
                }
            }
            other => Err(HostError::internal(format!(
                "{other} is not served by this fake"
            ))),
        }
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push((plugin.into(), level, message.into()));
    }
}

fn limits(timeout_ms: u64, max_in_flight: usize) -> CallLimits {
    CallLimits {
        timeout: Duration::from_millis(timeout_ms),
        max_in_flight,
    }
}

fn get(path: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        query: None,
        headers: vec![],
        body: vec![],
        client_cert_chain: vec![],
    }
}

fn load(
    copy: &Copy,
    config: Value,
    host: Arc<FakeHost>,
    limits: CallLimits,
) -> Result<LoadedPlugin, PluginError> {
    LoadedPlugin::load(&copy.path, &config, host, limits)
}

#[test]
fn echo_loads_reports_itself_and_round_trips_a_request() {
    let copy = copy_of("echo");
    let config = json!({"greeting": "merhaba", "nested": {"n": 1}});
    let plugin = load(&copy, config.clone(), Arc::default(), CallLimits::default()).unwrap();
    assert_eq!(plugin.name(), "echo");
    assert_eq!(plugin.version(), "1.0.0");
    assert_eq!(plugin.abi_version(), ABI_VERSION);
    assert_eq!(plugin.path(), copy.path);

    let request = HttpRequest {
        method: "POST".into(),
        path: "/applications".into(),
        query: Some("dry=1".into()),
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "gövde".as_bytes().to_vec(),
        client_cert_chain: vec![vec![0x30, 0x00]],
    };
    let response = plugin.handle_http(&request).unwrap();
    assert_eq!(response.status, 200);
    assert!(response
        .headers
        .contains(&("x-plugin".into(), "echo".into())));
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        body,
        json!({
            "method": "POST",
            "path": "/applications",
            "query": "dry=1",
            "body": "gövde",
            "config": config,
            "client_certs": 1,
        })
    );
    assert_eq!(plugin.in_flight(), 0);
}

#[test]
fn echo_reaches_the_host_api_and_the_log() {
    let copy = copy_of("echo");
    let host = Arc::new(FakeHost::default());
    let plugin = load(&copy, json!({}), host.clone(), CallLimits::default()).unwrap();

    let response = plugin.handle_http(&get("/lookup/0a1b")).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        decode::<CertificateInfo>(&response.body).unwrap(),
        known_certificate()
    );
    {
        let calls = host.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.as_str()),
            ("echo", "lookup_certificate")
        );
        assert_eq!(
            decode::<LookupCertificate>(&calls[0].2).unwrap(),
            LookupCertificate {
                serial: "0a1b".into()
            }
        );
    }

    let response = plugin.handle_http(&get("/lookup/ff")).unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (404, "no certificate with serial ff".as_bytes())
    );

    let response = plugin.handle_http(&get("/log")).unwrap();
    assert_eq!(response, HttpResponse::text(200, "logged"));
    assert_eq!(
        host.logs.lock().unwrap().as_slice(),
        &[(
            "echo".to_owned(),
            LogLevel::Info,
            "hello from echo".to_owned()
        )]
    );
}

#[test]
fn the_same_file_initialises_once() {
    let copy = copy_of("echo");
    let _first = load(&copy, json!({}), Arc::default(), CallLimits::default()).unwrap();
    let err = load(&copy, json!({}), Arc::default(), CallLimits::default()).unwrap_err();
    assert!(
        matches!(err, PluginError::Init { ref plugin, ref reason } if plugin == "echo" && reason.contains("already initialised")),
        "{err}"
    );
}

#[test]
fn a_panic_is_an_error_for_that_call_only() {
    let copy = copy_of("panicking");
    let plugin = load(&copy, json!({}), Arc::default(), CallLimits::default()).unwrap();
    assert_eq!(plugin.name(), "panicking");

    let err = plugin.handle_http(&get("/panic")).unwrap_err();
    match &err {
        PluginError::Panicked { plugin, message } => {
            assert_eq!(plugin, "panicking");
            assert!(
                message.starts_with("deliberate panic in the test plugin (at "),
                "{message}"
            );
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("plugin panicking panicked: deliberate panic in the test plugin"));

    // The plugin, and this process, go on.
    let response = plugin.handle_http(&get("/ok")).unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"ok"[..])
    );
    assert!(matches!(
        plugin.handle_http(&get("/panic")),
        Err(PluginError::Panicked { .. })
    ));
    assert_eq!(plugin.handle_http(&get("/ok")).unwrap().status, 200);
}

#[test]
fn a_panic_in_init_is_an_init_error() {
    let copy = copy_of("panicking");
    let err = load(
        &copy,
        json!({"panic_in_init": true}),
        Arc::default(),
        CallLimits::default(),
    )
    .unwrap_err();
    match &err {
        PluginError::Init { plugin, reason } => {
            assert_eq!(plugin, "panicking");
            assert!(
                reason.starts_with("panicked: deliberate panic in init"),
                "{reason}"
            );
        }
        other => panic!("expected Init, got {other:?}"),
    }
}

#[test]
fn a_plugin_of_the_previous_abi_is_refused_naming_both_versions() {
    // The test plugin claims ABI_VERSION - 1, as a plugin built against the previous nesca does.
    assert_eq!(ABI_VERSION, 2);
    let copy = copy_of("wrong_abi");
    let err = load(&copy, json!({}), Arc::default(), CallLimits::default()).unwrap_err();
    assert!(
        matches!(err, PluginError::AbiMismatch { ref path, plugin_abi: 1, host_abi: 2 } if *path == copy.path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "plugin {} has the wrong ABI: plugin ABI version 1, this nesca speaks 2; rebuild the plugin against this nesca",
            copy.path.display()
        )
    );
}

#[test]
fn a_missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libnesca_absent.so");
    let err = LoadedPlugin::load(
        &path,
        &json!({}),
        Arc::new(FakeHost::default()),
        CallLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, PluginError::MissingFile { path: ref p } if *p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("plugin file {} does not exist", path.display())
    );
}

/// A shared library that is surely not a nesca plugin: the C library this test runs on (from
/// /proc/self/maps), else SoftHSM's module.
fn some_library_without_the_symbol() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let libc = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
        })
        .map(PathBuf::from);
    libc.into_iter()
        .chain([PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")])
        .find(|p| p.is_file())
}

#[test]
fn a_library_without_the_entry_symbol_is_refused() {
    let Some(path) = some_library_without_the_symbol() else {
        eprintln!("note: no shared library found to try MissingSymbol with; skipped");
        return;
    };
    let err = LoadedPlugin::load(
        &path,
        &json!({}),
        Arc::new(FakeHost::default()),
        CallLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, PluginError::MissingSymbol { path: ref p, ref symbol } if *p == path && symbol == ENTRY_SYMBOL),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("does not export the symbol nesca_plugin_entry"),
        "{err}"
    );
}

#[test]
fn a_hanging_call_times_out_and_the_plugin_stays_responsive() {
    let copy = copy_of("hanging");
    let plugin = load(&copy, json!({}), Arc::default(), limits(300, 4)).unwrap();

    let hung = {
        let plugin = plugin.clone();
        thread::spawn(move || {
            let started = Instant::now();
            let result = plugin.handle_http(&get("/hang"));
            (result, started.elapsed())
        })
    };
    // While that call hangs, another one answers at once.
    thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let response = plugin.handle_http(&get("/ok")).unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"ok"[..])
    );
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    let (result, elapsed) = hung.join().unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(err, PluginError::Timeout { ref plugin, after } if plugin == "hanging" && after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin hanging did not answer within 300 ms"
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // The hung call still runs, and counts.
    assert_eq!(plugin.in_flight(), 1);
}

#[test]
fn calls_beyond_max_in_flight_are_busy() {
    let copy = copy_of("hanging");
    let plugin = load(&copy, json!({}), Arc::default(), limits(200, 1)).unwrap();
    assert!(matches!(
        plugin.handle_http(&get("/hang")),
        Err(PluginError::Timeout { .. })
    ));
    let err = plugin.handle_http(&get("/ok")).unwrap_err();
    assert!(
        matches!(err, PluginError::Busy { ref plugin } if plugin == "hanging"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin hanging is busy: too many calls in flight"
    );
}

#[test]
fn shutdown_reaches_the_plugin_once() {
    let copy = copy_of("echo");
    let plugin = load(&copy, json!({}), Arc::default(), CallLimits::default()).unwrap();
    plugin.shutdown();
    plugin.shutdown();
}
