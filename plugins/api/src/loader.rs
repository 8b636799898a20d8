//! The host side: loading a plugin library, checking its table, and calling it with a timeout and
//! a bound on calls in flight; and the host table through which the plugin calls back.
//!
//! Libraries are never closed: a call that timed out may still be running inside one, and a
//! plugin keeps pointers into the host table for ever.

use std::ffi::c_void;
use std::fmt;
use std::mem::size_of;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use libloading::Library;

use crate::abi::{
    self, take_foreign, write_out, HostTable, PluginTable, RBuf, RStr, ABI_VERSION, ENTRY_SYMBOL,
    PLUGIN_TABLE_V1_SIZE, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};
use crate::error::{one_line, PluginError};
use crate::host_error::{HostError, HostErrorCode};
use crate::payload::{host_api, HttpRequest, HttpResponse, LogLevel};
use crate::plugin::{is_valid_plugin_name, is_valid_plugin_version, MAX_VERSION_LEN};

/// What the host offers plugins: implemented by the server. `plugin` is the calling plugin's name.
pub trait HostApi: Send + Sync + 'static {
    /// Serves host API `method` (one of [`host_api::METHODS`]; others are refused before this is
    /// called) with its JSON request; answers the JSON response, or the [`HostError`] the plugin
    /// receives (as its JSON).
    fn call(&self, plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, HostError>;
    /// Logs a plugin's message (one line, at most 2 KiB, control characters replaced).
    fn log(&self, plugin: &str, level: LogLevel, message: &str);
}

/// Limits applied to every call into a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// How long the host waits for an answer (also for `init`).
    pub timeout: Duration,
    /// How many calls may run in the plugin at once, including those that timed out and are still
    /// running; beyond it calls are refused as `Busy`. 0 refuses every call.
    pub max_in_flight: usize,
}

impl Default for CallLimits {
    /// 30 s, 64 calls.
    fn default() -> Self {
        CallLimits {
            timeout: Duration::from_secs(30),
            max_in_flight: 64,
        }
    }
}

/// A loaded, initialised plugin. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct LoadedPlugin {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    version: String,
    abi_version: u32,
    path: PathBuf,
    table: PluginTable,
    limits: CallLimits,
    in_flight: Arc<AtomicUsize>,
    shut_down: AtomicBool,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.inner.name)
            .field("version", &self.inner.version)
            .field("abi_version", &self.inner.abi_version)
            .field("path", &self.inner.path)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// Loads the plugin at `path` and initialises it with `config`.
    ///
    /// Checks, in this order, before calling anything but the entry point: the file exists
    /// (`MissingFile`), the dynamic loader takes it (`Load`), it exports [`ENTRY_SYMBOL`]
    /// (`MissingSymbol`), its ABI version is this crate's (`AbiMismatch`), its table is large
    /// enough and its name (`[a-z0-9-]{1,32}`) and version are valid UTF-8 (`BadTable`). Then
    /// `init` runs under `limits.timeout` (`Init`, `Timeout`).
    ///
    /// A library file can be loaded once per process: the dynamic loader hands the same library
    /// back for the same file, and its plugin refuses a second `init`.
    pub fn load(
        path: &Path,
        config: &serde_json::Value,
        host: Arc<dyn HostApi>,
        limits: CallLimits,
    ) -> Result<LoadedPlugin, PluginError> {
        let table = open(path)?;
        let name = read_name(path, &table)?;
        let version = read_version(path, &table)?;

        let config = serde_json::to_vec(config).map_err(|e| PluginError::Init {
            plugin: name.clone(),
            reason: format!("cannot encode the configuration: {e}"),
        })?;
        let host_table = leak_host_table(&name, host);
        let (status, bytes) = run_timed(&name, limits.timeout, None, move || {
            let mut out = RBuf::empty();
            // SAFETY: `table` passed the checks in `open`; the library is never unloaded; the host
            // table is leaked (lives for ever); `config` outlives the call; `out` is a valid local.
            let status = unsafe { (table.init)(host_table, RStr::borrow(&config), &mut out) };
            // SAFETY: `out` is empty or written by the plugin; back to the plugin's free_buf.
            (status, unsafe { take_foreign(out, table.free_buf) })
        })?;
        if status != STATUS_OK {
            let reason = one_line(&bytes);
            return Err(PluginError::Init {
                plugin: name,
                reason: if status == STATUS_PANIC {
                    format!("panicked: {reason}")
                } else {
                    reason
                },
            });
        }
        Ok(LoadedPlugin {
            inner: Arc::new(Inner {
                name,
                version,
                abi_version: table.abi_version,
                path: path.to_owned(),
                table,
                limits,
                in_flight: Arc::new(AtomicUsize::new(0)),
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    /// The plugin's name (from its table).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The plugin's version (from its table).
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The ABI version the plugin was built for.
    pub fn abi_version(&self) -> u32 {
        self.inner.abi_version
    }

    /// The file the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> CallLimits {
        self.inner.limits
    }

    /// Calls running in the plugin now, timed-out ones included.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Hands `request` to the plugin and waits for its answer. Blocking: the call runs on a thread
    /// of its own; after `limits.timeout` this returns `Timeout` and the call is left to finish on
    /// its own, counted against `limits.max_in_flight` until it does.
    pub fn handle_http(&self, request: &HttpRequest) -> Result<HttpResponse, PluginError> {
        let (request, slot) = self.prepare(request)?;
        let table = self.inner.table;
        let (status, bytes) = run_timed(
            &self.inner.name,
            self.inner.limits.timeout,
            Some(slot),
            move || call_handle_http(table, &request),
        )?;
        self.answer(status, &bytes)
    }

    /// [`handle_http`](Self::handle_http) on the calling thread, without a timeout: for a caller
    /// that bounds the call itself (a plugin-host process, which the CA kills when its calls
    /// hang). Counted against `limits.max_in_flight` while it runs.
    pub fn handle_http_on_this_thread(
        &self,
        request: &HttpRequest,
    ) -> Result<HttpResponse, PluginError> {
        let (request, slot) = self.prepare(request)?;
        let (status, bytes) = call_handle_http(self.inner.table, &request);
        drop(slot);
        self.answer(status, &bytes)
    }

    /// The request encoded, and a slot of `max_in_flight` for it.
    fn prepare(&self, request: &HttpRequest) -> Result<(Vec<u8>, InFlight), PluginError> {
        let inner = &self.inner;
        let request = serde_json::to_vec(request).map_err(|e| PluginError::Payload {
            plugin: inner.name.clone(),
            reason: format!("cannot encode the HttpRequest: {e}"),
        })?;
        let slot =
            InFlight::acquire(&inner.in_flight, inner.limits.max_in_flight).ok_or_else(|| {
                PluginError::Busy {
                    plugin: inner.name.clone(),
                }
            })?;
        Ok((request, slot))
    }

    /// The plugin's answer, by its status.
    fn answer(&self, status: i32, bytes: &[u8]) -> Result<HttpResponse, PluginError> {
        let inner = &self.inner;
        match status {
            STATUS_OK => serde_json::from_slice(bytes).map_err(|e| PluginError::Payload {
                plugin: inner.name.clone(),
                reason: format!("bad HttpResponse: {e}"),
            }),
            STATUS_ERROR => Err(PluginError::Failed {
                plugin: inner.name.clone(),
                reason: one_line(bytes),
            }),
            STATUS_PANIC => Err(PluginError::Panicked {
                plugin: inner.name.clone(),
                message: one_line(bytes),
            }),
            other => Err(PluginError::Failed {
                plugin: inner.name.clone(),
                reason: format!("unknown status {other}: {}", one_line(bytes)),
            }),
        }
    }

    /// Tells the plugin the host is stopping (once; later calls do nothing). Waits at most
    /// `limits.timeout`. Calls still in flight go on.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        if inner.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let table = inner.table;
        let result = run_timed(&inner.name, inner.limits.timeout, None, move || {
            // SAFETY: the table passed the checks at load and the library is never unloaded.
            unsafe { (table.shutdown)() }
        });
        if let Err(e) = result {
            tracing::warn!(plugin = %inner.name, "shutdown: {e}");
        }
    }
}

/// One call of the plugin's `handle_http`: its status and its answer's bytes.
fn call_handle_http(table: PluginTable, request: &[u8]) -> (i32, Vec<u8>) {
    let mut out = RBuf::empty();
    // SAFETY: the table passed the checks at load and the library is never unloaded; `request`
    // outlives the call; `out` is a valid local.
    let status = unsafe { (table.handle_http)(RStr::borrow(request), &mut out) };
    // SAFETY: `out` is empty or written by the plugin; back to the plugin's free_buf.
    (status, unsafe { take_foreign(out, table.free_buf) })
}

/// Opens the library (for good: it is never closed, whatever happens next) and returns a copy of
/// its checked table.
fn open(path: &Path) -> Result<PluginTable, PluginError> {
    let bad_table = |reason: String| PluginError::BadTable {
        path: path.to_owned(),
        reason,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PluginError::MissingFile {
                path: path.to_owned(),
            })
        }
        Err(e) => {
            return Err(PluginError::Load {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
        Ok(meta) if !meta.is_file() => {
            return Err(PluginError::Load {
                path: path.to_owned(),
                reason: "not a regular file".to_owned(),
            })
        }
        Ok(_) => {}
    }

    // SAFETY: loading a library runs its initialisers. The operator named this file as a nesca
    // plugin in the configuration; that is the trust decision, as for any code the CA runs.
    let library = unsafe { Library::new(path) }.map_err(|e| PluginError::Load {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    // Never closed (module docs): from here on, code of the library may run at any time.
    let library: &'static Library = Box::leak(Box::new(library));

    // SAFETY: the ABI fixes the type of ENTRY_SYMBOL; a library that exports something else under
    // that reserved name breaks the ABI and nothing in dlsym can tell.
    let entry = unsafe {
        library.get::<unsafe extern "C" fn() -> *const PluginTable>(ENTRY_SYMBOL.as_bytes())
    }
    .map(|symbol| *symbol)
    .map_err(|_| PluginError::MissingSymbol {
        path: path.to_owned(),
        symbol: ENTRY_SYMBOL.to_owned(),
    })?;

    // SAFETY: the entry point takes no arguments and returns a pointer to a static table (ABI).
    let table_ptr = unsafe { entry() };
    if table_ptr.is_null() {
        return Err(bad_table(
            "the entry point returned a null table".to_owned(),
        ));
    }
    if !table_ptr.is_aligned() {
        return Err(bad_table("the plugin table is misaligned".to_owned()));
    }
    // SAFETY: non-null, aligned, and every version of the table starts with these two u32 fields;
    // nothing else is read before the version and size are known.
    let (abi_version, table_size) = unsafe {
        (
            ptr::addr_of!((*table_ptr).abi_version).read(),
            ptr::addr_of!((*table_ptr).table_size).read(),
        )
    };
    if abi_version != ABI_VERSION {
        return Err(PluginError::AbiMismatch {
            path: path.to_owned(),
            plugin_abi: abi_version,
            host_abi: ABI_VERSION,
        });
    }
    if table_size < PLUGIN_TABLE_V1_SIZE {
        return Err(bad_table(format!(
            "table of {table_size} bytes, ABI version {ABI_VERSION} needs at least {PLUGIN_TABLE_V1_SIZE}"
        )));
    }
    // SAFETY: the table holds at least the fields of this version (table_size), is static in the
    // library, and the library stays loaded. Fields appended by a later version are not read.
    let table = unsafe { table_ptr.read() };
    Ok(table)
}

fn read_name(path: &Path, table: &PluginTable) -> Result<String, PluginError> {
    let bad = |reason: String| PluginError::BadTable {
        path: path.to_owned(),
        reason,
    };
    if table.name.ptr.is_null() || table.name.len == 0 || table.name.len > 32 {
        return Err(bad(format!(
            "the plugin name must be 1 to 32 bytes of [a-z0-9-], not {} bytes",
            if table.name.ptr.is_null() {
                0
            } else {
                table.name.len
            }
        )));
    }
    // SAFETY: at most 32 bytes of a 'static string in the loaded library (ABI).
    let bytes = unsafe { table.name.as_bytes() };
    match std::str::from_utf8(bytes) {
        Ok(name) if is_valid_plugin_name(name) => Ok(name.to_owned()),
        _ => Err(bad(format!(
            "the plugin name {:?} is not 1 to 32 bytes of [a-z0-9-]",
            one_line(bytes)
        ))),
    }
}

fn read_version(path: &Path, table: &PluginTable) -> Result<String, PluginError> {
    let bad = |reason: String| PluginError::BadTable {
        path: path.to_owned(),
        reason,
    };
    if table.version.ptr.is_null() || table.version.len == 0 || table.version.len > MAX_VERSION_LEN
    {
        return Err(bad(format!(
            "the plugin version must be 1 to {MAX_VERSION_LEN} bytes of UTF-8"
        )));
    }
    // SAFETY: at most 64 bytes of a 'static string in the loaded library (ABI).
    let bytes = unsafe { table.version.as_bytes() };
    match std::str::from_utf8(bytes) {
        Ok(version) if is_valid_plugin_version(version) => Ok(version.to_owned()),
        _ => Err(bad(format!(
            "the plugin version {:?} is not printable UTF-8",
            one_line(bytes)
        ))),
    }
}

/// One call counted against `max_in_flight`; released when dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn acquire(counter: &Arc<AtomicUsize>, max: usize) -> Option<InFlight> {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlight(Arc::clone(counter)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `call` on a thread of its own and waits at most `timeout` for its result. The slot, if
/// any, is released when `call` returns, before the result is sent, so the caller never sees its
/// own finished call as in flight.
fn run_timed<R: Send + 'static>(
    plugin: &str,
    timeout: Duration,
    slot: Option<InFlight>,
    call: impl FnOnce() -> R + Send + 'static,
) -> Result<R, PluginError> {
    let (tx, rx) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name(format!("plugin {plugin}"))
        .spawn(move || {
            let result = call();
            drop(slot);
            let _ = tx.send(result);
        })
        .map_err(|e| PluginError::Failed {
            plugin: plugin.to_owned(),
            reason: format!("cannot start a thread for the call: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => Ok(result),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(PluginError::Timeout {
            plugin: plugin.to_owned(),
            after: timeout,
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(PluginError::Failed {
            plugin: plugin.to_owned(),
            reason: "the call ended without an answer".to_owned(),
        }),
    }
}

/// What a host table's `ctx` points to. Leaked: a plugin keeps its host table for ever.
struct HostShared {
    plugin: String,
    api: Arc<dyn HostApi>,
}

/// Builds the host table for plugin `plugin`, serving its calls through `api`. Both the table and
/// its context are leaked on purpose (the plugin may use them until the process ends).
pub(crate) fn leak_host_table(plugin: &str, api: Arc<dyn HostApi>) -> &'static HostTable {
    let shared: &'static HostShared = Box::leak(Box::new(HostShared {
        plugin: plugin.to_owned(),
        api,
    }));
    Box::leak(Box::new(HostTable {
        abi_version: ABI_VERSION,
        table_size: size_of::<HostTable>() as u32,
        ctx: (shared as *const HostShared).cast::<c_void>(),
        call: host_call,
        log: host_log,
        free_buf: abi::free_buf,
    }))
}

impl HostShared {
    fn dispatch(&self, method: &[u8], request: &[u8]) -> Result<Vec<u8>, HostError> {
        let method = match std::str::from_utf8(method) {
            Ok(m) if host_api::METHODS.contains(&m) => m,
            _ => {
                return Err(HostError::without_field(
                    HostErrorCode::Invalid,
                    format!("unknown host method {:?}", one_line(method)),
                ))
            }
        };
        self.api.call(&self.plugin, method, request)
    }
}

/// `HostTable::call`.
///
/// # Safety
/// ABI contract: `ctx` is the `ctx` of the table this function came in; `method` and
/// `request_json` are readable for this call; `out` is null or writable.
unsafe extern "C" fn host_call(
    ctx: *const c_void,
    method: RStr,
    request_json: RStr,
    out: *mut RBuf,
) -> i32 {
    // SAFETY: `ctx` is the leaked HostShared of this table (never freed), or null.
    let Some(shared) = (unsafe { ctx.cast::<HostShared>().as_ref() }) else {
        // SAFETY: `out` is null or writable.
        unsafe { write_out(out, HostError::internal("no host context").to_payload()) };
        return STATUS_ERROR;
    };
    // SAFETY: the plugin keeps both alive for the duration of this call.
    let (method, request) = unsafe { (method.as_bytes(), request_json.as_bytes()) };
    let (status, bytes) = match panic::catch_unwind(AssertUnwindSafe(|| {
        shared.dispatch(method, request)
    })) {
        Ok(Ok(response)) => (STATUS_OK, response),
        Ok(Err(refusal)) => (STATUS_ERROR, refusal.to_payload()),
        Err(_) => {
            tracing::error!(plugin = %shared.plugin, method = %one_line(method), "the host API panicked serving a plugin call");
            (
                STATUS_ERROR,
                HostError::internal("internal error in the host").to_payload(),
            )
        }
    };
    // SAFETY: `out` is null or writable.
    unsafe { write_out(out, bytes) };
    status
}

/// `HostTable::log`.
///
/// # Safety
/// ABI contract: `ctx` is the `ctx` of the table this function came in; `message` is readable for
/// this call.
unsafe extern "C" fn host_log(ctx: *const c_void, level: u32, message: RStr) {
    // SAFETY: `ctx` is the leaked HostShared of this table (never freed), or null.
    let Some(shared) = (unsafe { ctx.cast::<HostShared>().as_ref() }) else {
        return;
    };
    // SAFETY: the plugin keeps the message alive for the duration of this call.
    let message = one_line(unsafe { message.as_bytes() });
    let level = LogLevel::from_u32(level).unwrap_or(LogLevel::Info);
    if panic::catch_unwind(AssertUnwindSafe(|| {
        shared.api.log(&shared.plugin, level, &message)
    }))
    .is_err()
    {
        tracing::error!(plugin = %shared.plugin, "the host's log panicked");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

    struct Recorder {
        calls: Mutex<Vec<(String, String, Vec<u8>)>>,
        logs: Mutex<Vec<(String, LogLevel, String)>>,
    }

    impl HostApi for Recorder {
        fn call(
            &self,
            plugin: &str,
            method: &str,
            request_json: &[u8],
        ) -> Result<Vec<u8>, HostError> {
            self.calls
                .lock()
                .unwrap()
                .push((plugin.into(), method.into(), request_json.into()));
            match method {
                host_api::LIFECYCLE => panic!("boom"),
                host_api::SUBMIT_APPLICATION => {
                    Err(HostError::new(HostErrorCode::Refused, "tckn", "refused"))
                }
                _ => Ok(b"{}".to_vec()),
            }
        }
        fn log(&self, plugin: &str, level: LogLevel, message: &str) {
            if message == "panic" {
                panic!("log panic");
            }
            self.logs
                .lock()
                .unwrap()
                .push((plugin.into(), level, message.into()));
        }
    }

    fn raw_call(table: &HostTable, method: &[u8], request: &[u8]) -> (i32, Vec<u8>) {
        let mut out = RBuf::empty();
        // SAFETY: a table made by leak_host_table; arguments valid for the call.
        let status = unsafe {
            (table.call)(
                table.ctx,
                RStr::borrow(method),
                RStr::borrow(request),
                &mut out,
            )
        };
        // SAFETY: written by host_call in this binary.
        (status, unsafe { take_foreign(out, table.free_buf) })
    }

    #[test]
    fn host_table_dispatches_refuses_and_survives_panics() {
        let rec = Arc::new(Recorder {
            calls: Mutex::new(vec![]),
            logs: Mutex::new(vec![]),
        });
        let table = leak_host_table("kdhs", rec.clone());
        assert_eq!(table.abi_version, ABI_VERSION);
        assert_eq!(table.table_size, crate::HOST_TABLE_V1_SIZE);

        assert_eq!(
            raw_call(table, b"lookup_certificate", b"{\"v\":1}"),
            (STATUS_OK, b"{}".to_vec())
        );
        // Refusals travel as the JSON of the HostError, whole.
        let refused = |method: &[u8]| {
            let (status, bytes) = raw_call(table, method, b"{}");
            assert_eq!(status, STATUS_ERROR);
            HostError::from_payload(&bytes)
        };
        assert_eq!(
            refused(b"submit_application"),
            HostError::new(HostErrorCode::Refused, "tckn", "refused")
        );
        assert_eq!(
            refused(b"lifecycle"),
            HostError::internal("internal error in the host")
        );
        assert_eq!(
            refused(b"read_keys"),
            HostError::without_field(HostErrorCode::Invalid, "unknown host method \"read_keys\"")
        );
        assert_eq!(
            refused(b"\xff").to_string(),
            "unknown host method \"\u{fffd}\""
        );
        let calls = rec.calls.lock().unwrap();
        assert_eq!(calls.len(), 3, "unknown methods never reach the HostApi");
        assert_eq!(
            calls[0],
            (
                "kdhs".into(),
                "lookup_certificate".into(),
                b"{\"v\":1}".to_vec()
            )
        );
        drop(calls);

        // SAFETY: as above.
        unsafe {
            (table.log)(table.ctx, 2, RStr::borrow(b"line one\nline two"));
            (table.log)(table.ctx, 99, RStr::borrow(b"odd level"));
            (table.log)(table.ctx, 1, RStr::borrow(b"panic"));
            (table.log)(ptr::null(), 1, RStr::borrow(b"no ctx"));
        }
        assert_eq!(
            rec.logs.lock().unwrap().as_slice(),
            &[
                (
                    "kdhs".to_owned(),
                    LogLevel::Warn,
                    "line one line two".to_owned()
                ),
                ("kdhs".to_owned(), LogLevel::Info, "odd level".to_owned()),
            ]
        );

        let mut out = RBuf::empty();
        // SAFETY: a null ctx is refused without reading anything.
        let status =
            unsafe { (table.call)(ptr::null(), RStr::borrow(b"x"), RStr::borrow(b""), &mut out) };
        assert_eq!(status, STATUS_ERROR);
        // SAFETY: written by host_call in this binary.
        let bytes = unsafe { take_foreign(out, table.free_buf) };
        assert_eq!(
            HostError::from_payload(&bytes),
            HostError::internal("no host context")
        );
    }

    #[test]
    fn in_flight_slots_are_bounded_and_released() {
        let counter = Arc::new(AtomicUsize::new(0));
        let a = InFlight::acquire(&counter, 2).unwrap();
        let b = InFlight::acquire(&counter, 2).unwrap();
        assert!(InFlight::acquire(&counter, 2).is_none());
        drop(a);
        assert_eq!(counter.load(Ordering::SeqCst), 1);
        let _c = InFlight::acquire(&counter, 2).unwrap();
        drop(b);
        assert!(InFlight::acquire(&counter, 0).is_none());
    }

    #[test]
    fn run_timed_times_out_and_releases_the_slot_when_done() {
        let counter = Arc::new(AtomicUsize::new(0));
        let slot = InFlight::acquire(&counter, 1);
        let started = Instant::now();
        let err = run_timed("slow", Duration::from_millis(50), slot, || {
            thread::sleep(Duration::from_millis(300));
        })
        .unwrap_err();
        assert!(
            matches!(err, PluginError::Timeout { ref plugin, after } if plugin == "slow" && after == Duration::from_millis(50))
        );
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!(counter.load(Ordering::SeqCst), 1, "still running");
        let deadline = Instant::now() + Duration::from_secs(5);
        while counter.load(Ordering::SeqCst) != 0 {
            assert!(Instant::now() < deadline, "slot never released");
            thread::sleep(Duration::from_millis(10));
        }

        let slot = InFlight::acquire(&counter, 1);
        assert_eq!(
            run_timed("fast", Duration::from_secs(5), slot, || 7).unwrap(),
            7
        );
        assert_eq!(
            counter.load(Ordering::SeqCst),
            0,
            "released before the answer"
        );
    }

    #[test]
    fn missing_and_unloadable_files() {
        let dir = tempfile::tempdir().unwrap();
        let host: Arc<dyn HostApi> = Arc::new(Recorder {
            calls: Mutex::new(vec![]),
            logs: Mutex::new(vec![]),
        });
        let missing = dir.path().join("libnope.so");
        let err = LoadedPlugin::load(
            &missing,
            &serde_json::Value::Null,
            host.clone(),
            CallLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::MissingFile { ref path } if *path == missing));

        let junk = dir.path().join("libjunk.so");
        std::fs::write(&junk, b"not an ELF file").unwrap();
        let err = LoadedPlugin::load(
            &junk,
            &serde_json::Value::Null,
            host.clone(),
            CallLimits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, PluginError::Load { ref path, .. } if *path == junk),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("cannot load plugin {}: ", junk.display())),
            "{err}"
        );

        let err = LoadedPlugin::load(
            dir.path(),
            &serde_json::Value::Null,
            host,
            CallLimits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, PluginError::Load { ref reason, .. } if reason == "not a regular file"),
            "{err}"
        );
    }
}
