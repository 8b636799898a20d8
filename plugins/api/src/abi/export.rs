//! The plugin side of the C ABI: the `extern "C"` functions `export_plugin!` puts in a plugin's
//! table, and the calls a plugin makes through the host's table.
//!
//! Every exported function runs the plugin's code inside `catch_unwind`, so a panic becomes status
//! 2 with its message and never unwinds across the C boundary. While a call runs, a panic hook
//! (installed at `init`, in the plugin's own copy of std) records the message and location instead
//! of printing it to stderr; panics outside calls go to the previous hook as before.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::{Mutex, Once};

use super::{
    take_foreign, write_out, HostTable, RBuf, RStr, ABI_VERSION, HOST_TABLE_V1_SIZE, STATUS_ERROR,
    STATUS_OK, STATUS_PANIC,
};
use crate::host_error::HostError;
use crate::payload::{HttpRequest, LogLevel};
use crate::plugin::__private::Export;
use crate::plugin::Host;

thread_local! {
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Serializes `init` calls (one plugin instance per process).
static INIT_LOCK: Mutex<()> = Mutex::new(());

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CALL.try_with(Cell::get).unwrap_or(false) {
                let message = panic_text(info.payload());
                let text = match info.location() {
                    Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
                    None => message,
                };
                let _ = LAST_PANIC.try_with(|last| last.replace(Some(text)));
            } else {
                previous(info);
            }
        }));
    });
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Runs `f` with panics caught: (status, bytes for `out`).
fn guarded(f: impl FnOnce() -> Result<Vec<u8>, String>) -> (i32, Vec<u8>) {
    let was_in_call = IN_CALL.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_CALL.with(|c| c.set(was_in_call));
    match result {
        Ok(Ok(bytes)) => (STATUS_OK, bytes),
        Ok(Err(message)) => (STATUS_ERROR, message.into_bytes()),
        Err(payload) => {
            let recorded = LAST_PANIC.with(|last| last.borrow_mut().take());
            let message = recorded.unwrap_or_else(|| panic_text(payload.as_ref()));
            // Dropping the payload could itself panic (a payload with a panicking Drop): keep it
            // from unwinding out of here.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            (STATUS_PANIC, message.into_bytes())
        }
    }
}

/// `PluginTable::init` of plugin `P`.
///
/// # Safety
/// ABI contract: `host` is null or a host table that outlives the plugin, `config_json` is
/// readable for this call, `out` is null or writable.
pub(crate) unsafe extern "C" fn init<P: Export>(
    host: *const HostTable,
    config_json: RStr,
    out: *mut RBuf,
) -> i32 {
    install_panic_hook();
    // SAFETY: the host keeps the config bytes alive for the duration of this call.
    let config = unsafe { config_json.as_bytes() };
    // SAFETY: `host` is null or points to a host table that is never freed (ABI contract);
    // `checked_host_table` reads only the header fields before trusting the size.
    let host = unsafe { checked_host_table(host) };
    let (status, bytes) = guarded(|| {
        let host = host?;
        init_instance::<P>(host, config).map(|()| Vec::new())
    });
    // SAFETY: `out` is null or writable (ABI contract).
    unsafe { write_out(out, bytes) };
    status
}

/// Checks a host table's header and returns it as a `'static` reference.
///
/// # Safety
/// `host` is null or points to a host table (at least its two header fields) that is never freed.
unsafe fn checked_host_table(host: *const HostTable) -> Result<&'static HostTable, String> {
    if host.is_null() {
        return Err("the host passed no host table".to_owned());
    }
    if !host.is_aligned() {
        return Err("the host table is misaligned".to_owned());
    }
    // SAFETY: non-null and aligned; every version of the table starts with these two u32 fields.
    let (abi_version, table_size) = unsafe {
        (
            ptr::addr_of!((*host).abi_version).read(),
            ptr::addr_of!((*host).table_size).read(),
        )
    };
    if abi_version != ABI_VERSION {
        return Err(format!(
            "host ABI version {abi_version}, this plugin speaks {ABI_VERSION}"
        ));
    }
    if table_size < HOST_TABLE_V1_SIZE {
        return Err(format!(
            "host table of {table_size} bytes, ABI version {ABI_VERSION} needs at least {HOST_TABLE_V1_SIZE}"
        ));
    }
    // SAFETY: the table is at least as large as this version's HostTable and lives forever.
    Ok(unsafe { &*host })
}

fn init_instance<P: Export>(host: &'static HostTable, config: &[u8]) -> Result<(), String> {
    let config: serde_json::Value = if config.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(config)
            .map_err(|e| format!("the configuration is not valid JSON: {e}"))?
    };
    let _lock = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let slot = P::slot();
    if slot.get().is_some() {
        return Err(format!(
            "plugin {} is already initialised in this process (a plugin file can be loaded only once)",
            P::NAME
        ));
    }
    // The plugin's own error, as one line: the reason the host reports (`PluginError::Init`).
    let instance = P::init(config, Host::from_table(host)).map_err(|e| e.to_string())?;
    slot.set(instance)
        .map_err(|_| format!("plugin {} is already initialised in this process", P::NAME))
}

/// `PluginTable::handle_http` of plugin `P`.
///
/// # Safety
/// ABI contract: `request_json` is readable for this call, `out` is null or writable.
pub(crate) unsafe extern "C" fn handle_http<P: Export>(request_json: RStr, out: *mut RBuf) -> i32 {
    // SAFETY: the host keeps the request bytes alive for the duration of this call.
    let request = unsafe { request_json.as_bytes() };
    let (status, bytes) = guarded(|| {
        let plugin = P::slot()
            .get()
            .ok_or_else(|| format!("plugin {} is not initialised", P::NAME))?;
        let request: HttpRequest =
            serde_json::from_slice(request).map_err(|e| format!("bad HttpRequest payload: {e}"))?;
        let response = plugin.handle_http(request);
        serde_json::to_vec(&response).map_err(|e| format!("cannot encode the HttpResponse: {e}"))
    });
    // SAFETY: `out` is null or writable (ABI contract).
    unsafe { write_out(out, bytes) };
    status
}

/// `PluginTable::shutdown` of plugin `P`.
///
/// # Safety
/// None beyond the ABI's; `unsafe` only to match the table's field type.
pub(crate) unsafe extern "C" fn shutdown<P: Export>() {
    let _ = guarded(|| {
        if let Some(plugin) = P::slot().get() {
            plugin.shutdown();
        }
        Ok(Vec::new())
    });
}

/// Calls host API `method` through `table`; a refusal is the [`HostError`] the host sent.
pub(crate) fn host_call(
    table: &'static HostTable,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, HostError> {
    let mut out = RBuf::empty();
    // SAFETY: `table` is a host's table (the invariant of `Host`), so `call` and `ctx` belong
    // together; `method` and `request` outlive the call; `out` is a valid local.
    let status = unsafe {
        (table.call)(
            table.ctx,
            RStr::borrow(method.as_bytes()),
            RStr::borrow(request),
            &mut out,
        )
    };
    // SAFETY: `out` is empty or written by the host; it goes back to the host's free_buf.
    let bytes = unsafe { take_foreign(out, table.free_buf) };
    if status == STATUS_OK {
        Ok(bytes)
    } else {
        Err(HostError::from_payload(&bytes))
    }
}

/// Logs through `table`.
pub(crate) fn host_log(table: &'static HostTable, level: LogLevel, message: &str) {
    // SAFETY: as in `host_call`; `message` outlives the call.
    unsafe { (table.log)(table.ctx, level.as_u32(), RStr::borrow(message.as_bytes())) };
}

#[cfg(test)]
mod tests {
    //! The glue, driven in-process through a table made by `export_plugin!` and a host table made
    //! by the loader's code (no dlopen; tests/load.rs does that).
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::abi::{free_buf, PluginTable};
    use crate::loader::{leak_host_table, HostApi};
    use crate::{host_api, HostErrorCode, HttpResponse, InitError, Plugin};

    struct Glue {
        host: Host,
        greeting: String,
    }

    impl Plugin for Glue {
        const NAME: &'static str = "glue-test";
        const VERSION: &'static str = "0.0.1";

        fn init(config: serde_json::Value, host: Host) -> Result<Self, InitError> {
            if config["refuse"] == true {
                return Err("refused by config".into());
            }
            let greeting = config["greeting"].as_str().unwrap_or("hi").to_owned();
            Ok(Glue { host, greeting })
        }

        fn handle_http(&self, request: HttpRequest) -> HttpResponse {
            match request.path.as_str() {
                "/panic" => panic!("glue panic {}", 42),
                "/lookup" => match self.host.lookup_certificate("0a") {
                    Ok(info) => HttpResponse::text(200, info.subject),
                    Err(e) => HttpResponse::text(404, e.to_string()),
                },
                // The host's typed refusal arrives whole: code, field and rule.
                "/refused" => match self.host.lookup_certificate("zz") {
                    Ok(_) => HttpResponse::text(200, "found"),
                    Err(e) => HttpResponse::json(422, &e),
                },
                _ => {
                    self.host.log(LogLevel::Warn, "glue says hello");
                    HttpResponse::text(200, self.greeting.clone())
                }
            }
        }
    }

    crate::export_plugin!(Glue);

    #[derive(Default)]
    struct Fake {
        logs: Mutex<Vec<(String, LogLevel, String)>>,
    }

    impl HostApi for Fake {
        fn call(
            &self,
            plugin: &str,
            method: &str,
            request_json: &[u8],
        ) -> Result<Vec<u8>, HostError> {
            assert_eq!(plugin, "glue-test");
            assert_eq!(method, host_api::LOOKUP_CERTIFICATE);
            let req: host_api::LookupCertificate = crate::decode(request_json).unwrap();
            if req.serial == "zz" {
                return Err(HostError::invalid("serial", "must be hex"));
            }
            Ok(crate::encode(&host_api::CertificateInfo {
                serial: req.serial,
                status: "active".into(),
                subject: "CN=Glue".into(),
                tckn: None,
                not_before: 0,
                not_after: 1,
                certificate_der: None,
            })
            .unwrap())
        }

        fn log(&self, plugin: &str, level: LogLevel, message: &str) {
            self.logs
                .lock()
                .unwrap()
                .push((plugin.into(), level, message.into()));
        }
    }

    fn call_http(table: &PluginTable, path: &str) -> (i32, Vec<u8>) {
        let request = crate::encode(&HttpRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            headers: vec![],
            body: vec![],
            client_cert_chain: vec![],
        })
        .unwrap();
        let mut out = RBuf::empty();
        // SAFETY: a table made by export_plugin! in this binary; arguments valid for the call.
        let status = unsafe { (table.handle_http)(RStr::borrow(&request), &mut out) };
        // SAFETY: written by the plugin glue of this binary.
        (status, unsafe { take_foreign(out, table.free_buf) })
    }

    fn call_init(table: &PluginTable, host: *const HostTable, config: &str) -> (i32, String) {
        let mut out = RBuf::empty();
        // SAFETY: as above.
        let status = unsafe { (table.init)(host, RStr::borrow(config.as_bytes()), &mut out) };
        // SAFETY: as above.
        let bytes = unsafe { take_foreign(out, table.free_buf) };
        (status, String::from_utf8(bytes).unwrap())
    }

    /// One test, because the plugin instance is one per process.
    #[test]
    fn exported_table_drives_the_plugin() {
        // SAFETY: the entry point returns a pointer to a static table.
        let table: &PluginTable = unsafe { &*nesca_plugin_entry() };
        assert_eq!(table.abi_version, ABI_VERSION);
        assert_eq!(
            table.table_size as usize,
            std::mem::size_of::<PluginTable>()
        );
        // SAFETY: 'static strings.
        let (name, version) = unsafe { (table.name.as_bytes(), table.version.as_bytes()) };
        assert_eq!((name, version), (&b"glue-test"[..], &b"0.0.1"[..]));

        // Before init: an error, not a crash.
        let (status, body) = call_http(table, "/");
        assert_eq!(status, STATUS_ERROR);
        assert_eq!(body, b"plugin glue-test is not initialised");

        let fake = Arc::new(Fake::default());
        let host = leak_host_table("glue-test", fake.clone());

        // Bad host tables and bad configurations are refused.
        let (status, message) = call_init(table, ptr::null(), "{}");
        assert_eq!(
            (status, message.as_str()),
            (STATUS_ERROR, "the host passed no host table")
        );
        let old: &'static HostTable = Box::leak(Box::new(HostTable {
            abi_version: 7,
            ..*host
        }));
        let (status, message) = call_init(table, old, "{}");
        assert_eq!(
            (status, message.as_str()),
            (STATUS_ERROR, "host ABI version 7, this plugin speaks 2")
        );
        let (status, message) = call_init(table, host, "{not json");
        assert_eq!(status, STATUS_ERROR);
        assert!(
            message.starts_with("the configuration is not valid JSON"),
            "{message}"
        );
        let (status, message) = call_init(table, host, r#"{"refuse":true}"#);
        assert_eq!(
            (status, message.as_str()),
            (STATUS_ERROR, "refused by config")
        );

        let (status, message) = call_init(table, host, r#"{"greeting":"merhaba"}"#);
        assert_eq!((status, message.as_str()), (STATUS_OK, ""));
        let (status, message) = call_init(table, host, "{}");
        assert_eq!(status, STATUS_ERROR);
        assert!(message.contains("already initialised"), "{message}");

        let (status, body) = call_http(table, "/");
        assert_eq!(status, STATUS_OK);
        let response: HttpResponse = crate::decode(&body).unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"merhaba"[..])
        );
        assert_eq!(
            fake.logs.lock().unwrap().as_slice(),
            &[(
                "glue-test".to_owned(),
                LogLevel::Warn,
                "glue says hello".to_owned()
            )]
        );

        let (status, body) = call_http(table, "/lookup");
        assert_eq!(status, STATUS_OK);
        let response: HttpResponse = crate::decode(&body).unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"CN=Glue"[..])
        );

        let (status, body) = call_http(table, "/refused");
        assert_eq!(status, STATUS_OK);
        let response: HttpResponse = crate::decode(&body).unwrap();
        assert_eq!(response.status, 422);
        let refusal: HostError = crate::decode(&response.body).unwrap();
        assert_eq!(
            (refusal.code, refusal.to_string().as_str()),
            (HostErrorCode::Invalid, "serial: must be hex")
        );

        let (status, body) = call_http(table, "/panic");
        assert_eq!(status, STATUS_PANIC);
        let message = String::from_utf8(body).unwrap();
        assert!(message.starts_with("glue panic 42 (at "), "{message}");
        assert!(message.contains("export.rs"), "{message}");

        // Still usable after the panic.
        assert_eq!(call_http(table, "/").0, STATUS_OK);

        // A bad request payload is an error for that call.
        let mut out = RBuf::empty();
        // SAFETY: as above.
        let status = unsafe { (table.handle_http)(RStr::borrow(b"[1,2]"), &mut out) };
        // SAFETY: written by the plugin glue of this binary.
        let bytes = unsafe { take_foreign(out, free_buf) };
        assert_eq!(status, STATUS_ERROR);
        assert!(String::from_utf8(bytes)
            .unwrap()
            .starts_with("bad HttpRequest payload"));

        // SAFETY: as above.
        unsafe { (table.shutdown)() };
    }
}
