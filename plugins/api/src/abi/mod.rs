//! The C ABI shared by the host and its plugins: `#[repr(C)]` types, the version constants, and the
//! few memory primitives that move bytes across the boundary.
//!
//! Rules of the ABI (version [`ABI_VERSION`]):
//!
//! - A plugin exports one symbol, [`ENTRY_SYMBOL`], an `extern "C" fn() -> *const PluginTable`
//!   returning a pointer to an immutable table that lives as long as the library is loaded.
//! - Tables are append-only: a later ABI revision may add fields at the end and says how large its
//!   table is in `table_size`; a reader uses a field only if `table_size` covers it. An
//!   incompatible change would bump `abi_version`, and a host refuses any version it does not speak.
//! - [`RStr`] is borrowed for the duration of one call; [`RBuf`] is owned by the side that allocated
//!   it and is freed only through that side's `free_buf`. The receiving side copies the bytes and
//!   hands the buffer back, so the two sides never need to share an allocator.
//! - No function of either table may unwind: the glue catches panics on both sides.
//! - Every function of both tables may be called from any thread, concurrently.
//!
//! This module (with `export` beside it and the loader) is where the crate's `unsafe` lives.

pub(crate) mod export;

use std::ffi::c_void;
use std::mem::{offset_of, size_of, ManuallyDrop};

/// The ABI version this crate speaks. Bumped only by an incompatible change: version 2 answers a
/// failed host call with the JSON of a [`HostError`](crate::HostError) instead of free text.
pub const ABI_VERSION: u32 = 2;

/// The one symbol a plugin exports: `extern "C" fn() -> *const PluginTable`.
pub const ENTRY_SYMBOL: &str = "nesca_plugin_entry";

/// Size in bytes of a [`PluginTable`] of ABI version 1: the smallest `table_size` a host accepts.
/// Stays the same when fields are appended later.
pub const PLUGIN_TABLE_V1_SIZE: u32 =
    (offset_of!(PluginTable, shutdown) + size_of::<unsafe extern "C" fn()>()) as u32;

/// Size in bytes of a [`HostTable`] of ABI version 1: the smallest `table_size` a plugin accepts.
pub const HOST_TABLE_V1_SIZE: u32 =
    (offset_of!(HostTable, free_buf) + size_of::<unsafe extern "C" fn(RBuf)>()) as u32;

/// Status of a call: success; `out` holds the answer.
pub const STATUS_OK: i32 = 0;
/// Status of a call: refused or failed; `out` holds the JSON of a [`HostError`](crate::HostError)
/// (host calls) or a UTF-8 error message (plugin calls).
pub const STATUS_ERROR: i32 = 1;
/// Status of a plugin call: the plugin panicked; `out` holds the panic message.
pub const STATUS_PANIC: i32 = 2;

/// Borrowed bytes (usually UTF-8 text), valid for the duration of one call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl RStr {
    /// A view of a `'static` string, usable in a `static` initializer (plugin name and version).
    pub const fn from_static(s: &'static str) -> RStr {
        RStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// A view of `bytes`. Creating it is safe; whoever reads it must make sure `bytes` is still
    /// alive, which holds for the duration of the call it is passed to.
    pub fn borrow(bytes: &[u8]) -> RStr {
        RStr {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes viewed. A null pointer reads as empty.
    ///
    /// # Safety
    /// Unless null, `ptr` must point to `len` initialised bytes that stay alive and unchanged for
    /// `'a` (for an `RStr` received as an argument: for the duration of that call).
    pub unsafe fn as_bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: non-null, and the caller guarantees `len` readable bytes that outlive 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// An owned byte buffer crossing the boundary: the bytes of a `Vec<u8>` taken apart. Freed only
/// by the side that allocated it, through that side's `free_buf`.
#[repr(C)]
#[derive(Debug)]
pub struct RBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl RBuf {
    /// No buffer: what an out-parameter holds before the callee writes it. Freeing it is a no-op.
    pub const fn empty() -> RBuf {
        RBuf {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Takes `vec` apart without freeing it (`Vec::into_raw_parts`).
    pub fn from_vec(vec: Vec<u8>) -> RBuf {
        let mut vec = ManuallyDrop::new(vec);
        RBuf {
            ptr: vec.as_mut_ptr(),
            len: vec.len(),
            cap: vec.capacity(),
        }
    }

    /// Puts the `Vec<u8>` back together (`Vec::from_raw_parts`); an empty `RBuf` gives an empty
    /// vector.
    ///
    /// # Safety
    /// The buffer must come from [`RBuf::from_vec`] in this same binary (same allocator), unchanged,
    /// and must not be used again afterwards.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: ptr/len/cap are those of a Vec<u8> taken apart by `from_vec` in this binary, and
        // ownership passes back here exactly once (the caller's contract).
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// The bytes of the buffer, without taking ownership. A null pointer reads as empty.
    ///
    /// # Safety
    /// Unless null, `ptr` must point to `len` initialised bytes that stay alive for `'a`, i.e.
    /// until the buffer is handed to its `free_buf`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: non-null; the owner keeps `len` bytes alive until free_buf (caller's contract).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The `free_buf` of whichever binary this copy of the crate is linked into: each plugin and the
/// host have their own copy, so each frees with its own allocator.
///
/// # Safety
/// `buf` must be empty or come from [`RBuf::from_vec`] in this binary and not be freed twice.
pub unsafe extern "C" fn free_buf(buf: RBuf) {
    // SAFETY: the caller's contract is exactly `into_vec`'s.
    drop(unsafe { buf.into_vec() });
}

/// What a plugin exports (through [`ENTRY_SYMBOL`]). Version 1 layout; fields are only appended.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PluginTable {
    /// [`ABI_VERSION`] as the plugin was built.
    pub abi_version: u32,
    /// `size_of::<PluginTable>()` as the plugin was built.
    pub table_size: u32,
    /// The plugin's name (`[a-z0-9-]{1,32}`), `'static` in the plugin.
    pub name: RStr,
    /// The plugin's version, `'static` in the plugin.
    pub version: RStr,
    /// Called once, before anything else but `shutdown`. 0 = ok; otherwise `*out` is a UTF-8
    /// error message (1 = refused, 2 = panicked).
    pub init:
        unsafe extern "C" fn(host: *const HostTable, config_json: RStr, out: *mut RBuf) -> i32,
    /// 0 = `*out` is the `HttpResponse` JSON; 1 = `*out` is an error message; 2 = the plugin
    /// panicked, `*out` is the panic message.
    pub handle_http: unsafe extern "C" fn(request_json: RStr, out: *mut RBuf) -> i32,
    /// Frees a buffer the plugin allocated.
    pub free_buf: unsafe extern "C" fn(buf: RBuf),
    /// Tells the plugin the host is stopping.
    pub shutdown: unsafe extern "C" fn(),
}

// SAFETY: a PluginTable is plain data: integers, function pointers (callable from any thread by the
// ABI's rules) and pointers to immutable 'static strings. Nothing is mutated through a shared
// reference, and reading the strings already requires `unsafe` (`RStr::as_bytes`).
unsafe impl Sync for PluginTable {}
// SAFETY: as above; moving the table to another thread moves only those values.
unsafe impl Send for PluginTable {}

/// What the host gives a plugin at `init`. Lives as long as the process (the host never frees it).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HostTable {
    /// [`ABI_VERSION`] as the host was built.
    pub abi_version: u32,
    /// `size_of::<HostTable>()` as the host was built.
    pub table_size: u32,
    /// Opaque; passed back to `call` and `log`.
    pub ctx: *const c_void,
    /// Calls a host API method (`host_api`). 0 = `*out` is the response JSON; 1 = `*out` is the
    /// JSON of a [`HostError`](crate::HostError).
    pub call: unsafe extern "C" fn(
        ctx: *const c_void,
        method: RStr,
        request_json: RStr,
        out: *mut RBuf,
    ) -> i32,
    /// Logs `message` (UTF-8) at `level` (`LogLevel` as u32).
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u32, message: RStr),
    /// Frees a buffer the host allocated.
    pub free_buf: unsafe extern "C" fn(buf: RBuf),
}

// SAFETY: a HostTable is plain data: integers, function pointers callable from any thread (ABI
// rule), and `ctx`, which points to immutable, never-freed host data that is itself Sync (the
// loader's `HostShared`: a String and an `Arc<dyn HostApi>` with HostApi: Send + Sync).
unsafe impl Sync for HostTable {}
// SAFETY: as above.
unsafe impl Send for HostTable {}

/// Copies the bytes of an `RBuf` received from the other side and hands the buffer back to that
/// side's `free_buf`.
///
/// # Safety
/// `buf` must have been written by the other side's code (or be [`RBuf::empty`]), and `free` must
/// be that side's `free_buf`.
pub(crate) unsafe fn take_foreign(buf: RBuf, free: unsafe extern "C" fn(RBuf)) -> Vec<u8> {
    // SAFETY: the other side keeps the bytes alive until its free_buf, called just below.
    let bytes = unsafe { buf.as_slice() }.to_vec();
    // SAFETY: handing the buffer back to the side that allocated it, once.
    unsafe { free(buf) };
    bytes
}

/// Writes `bytes` as a buffer of this binary into `out`, if `out` is not null.
///
/// # Safety
/// Unless null, `out` must be valid for a write of one `RBuf`.
pub(crate) unsafe fn write_out(out: *mut RBuf, bytes: Vec<u8>) {
    if out.is_null() {
        return;
    }
    // SAFETY: non-null and valid for writes (caller's contract); `write` does not read or drop the
    // previous value, which is plain data anyway.
    unsafe { out.write(RBuf::from_vec(bytes)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbuf_round_trips_a_vec() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"hello, plugin");
        let cap = v.capacity();
        let buf = RBuf::from_vec(v);
        assert_eq!(buf.len, 13);
        assert_eq!(buf.cap, cap);
        // SAFETY: made just above by from_vec in this binary.
        assert_eq!(unsafe { buf.as_slice() }, b"hello, plugin");
        // SAFETY: as above, and not used again.
        let back = unsafe { buf.into_vec() };
        assert_eq!(back, b"hello, plugin");
        assert_eq!(back.capacity(), cap);
    }

    #[test]
    fn empty_buffers_are_harmless() {
        // SAFETY: empty buffers own nothing.
        unsafe {
            assert!(RBuf::empty().as_slice().is_empty());
            assert!(RBuf::empty().into_vec().is_empty());
            free_buf(RBuf::empty());
            let v = RBuf::from_vec(Vec::new());
            assert!(v.as_slice().is_empty());
            free_buf(v);
        }
    }

    #[test]
    fn take_foreign_copies_then_frees() {
        let buf = RBuf::from_vec(b"abc".to_vec());
        // SAFETY: a buffer of this binary, freed by this binary's free_buf.
        let bytes = unsafe { take_foreign(buf, free_buf) };
        assert_eq!(bytes, b"abc");
    }

    #[test]
    fn write_out_writes_and_ignores_null() {
        let mut out = RBuf::empty();
        // SAFETY: `out` is a valid local; null is ignored.
        unsafe {
            write_out(&mut out, b"msg".to_vec());
            write_out(std::ptr::null_mut(), b"lost".to_vec());
            assert_eq!(take_foreign(out, free_buf), b"msg");
        }
    }

    #[test]
    fn rstr_views() {
        const S: RStr = RStr::from_static("echo");
        // SAFETY: points to a 'static str.
        assert_eq!(unsafe { S.as_bytes() }, b"echo");
        let owned = String::from("x-y");
        let r = RStr::borrow(owned.as_bytes());
        // SAFETY: `owned` is alive.
        assert_eq!(unsafe { r.as_bytes() }, b"x-y");
        let null = RStr {
            ptr: std::ptr::null(),
            len: 5,
        };
        // SAFETY: null reads as empty.
        assert!(unsafe { null.as_bytes() }.is_empty());
    }

    #[test]
    fn v1_sizes_cover_whole_v1_tables() {
        assert_eq!(PLUGIN_TABLE_V1_SIZE as usize, size_of::<PluginTable>());
        assert_eq!(HOST_TABLE_V1_SIZE as usize, size_of::<HostTable>());
    }
}
