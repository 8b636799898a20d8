//! The one error type of the host side.

use std::path::PathBuf;
use std::time::Duration;

/// Why loading a plugin, or a call into one, failed. `Display` is one line naming the file (while
/// loading) or the plugin (once its name is known) and the reason.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin file does not exist.
    #[error("plugin file {} does not exist", .path.display())]
    MissingFile { path: PathBuf },
    /// The dynamic loader refused the file (`reason` is its message).
    #[error("cannot load plugin {}: {reason}", .path.display())]
    Load { path: PathBuf, reason: String },
    /// The library does not export the entry symbol.
    #[error("plugin {} does not export the symbol {symbol} (is it a nesca plugin?)", .path.display())]
    MissingSymbol { path: PathBuf, symbol: String },
    /// The plugin was built for another ABI version (an older nesca's, usually): it must be
    /// rebuilt against this nesca's `nesca-plugin-api`.
    #[error(
        "plugin {} has the wrong ABI: plugin ABI version {plugin_abi}, this nesca speaks {host_abi}; rebuild the plugin against this nesca",
        .path.display()
    )]
    AbiMismatch {
        path: PathBuf,
        plugin_abi: u32,
        host_abi: u32,
    },
    /// The plugin's table is unusable (null, too small, bad name or version).
    #[error("plugin {} has a bad plugin table: {reason}", .path.display())]
    BadTable { path: PathBuf, reason: String },
    /// The plugin's `init` refused its configuration, failed or panicked.
    #[error("plugin {plugin} failed to initialise: {reason}")]
    Init { plugin: String, reason: String },
    /// The plugin panicked while handling a call; the panic was caught at the boundary.
    #[error("plugin {plugin} panicked: {message}")]
    Panicked { plugin: String, message: String },
    /// The plugin did not answer in time; the call goes on in the background.
    #[error("plugin {plugin} did not answer within {} ms", .after.as_millis())]
    Timeout { plugin: String, after: Duration },
    /// Too many calls into the plugin are in flight.
    #[error("plugin {plugin} is busy: too many calls in flight")]
    Busy { plugin: String },
    /// The plugin reported an error, or the call could not be made.
    #[error("plugin {plugin} failed: {reason}")]
    Failed { plugin: String, reason: String },
    /// The plugin answered with a payload that does not decode.
    #[error("plugin {plugin} sent a bad payload: {reason}")]
    Payload { plugin: String, reason: String },
    /// The plugin cannot take calls now: its host process ended, or is being restarted.
    #[error("plugin {plugin} is unavailable: {reason}")]
    Unavailable { plugin: String, reason: String },
}

/// Longest text taken from a plugin into an error or a log line, in bytes.
pub(crate) const MAX_FOREIGN_TEXT: usize = 2048;

/// Turns text from the other side into one bounded line: invalid UTF-8 replaced, control
/// characters (newlines included) turned into spaces, cut at [`MAX_FOREIGN_TEXT`] bytes.
pub fn one_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(MAX_FOREIGN_TEXT + 3));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_FOREIGN_TEXT {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_or_plugin_and_reason() {
        let e = PluginError::AbiMismatch {
            path: "/opt/p/libx.so".into(),
            plugin_abi: 1,
            host_abi: 2,
        };
        assert_eq!(
            e.to_string(),
            "plugin /opt/p/libx.so has the wrong ABI: plugin ABI version 1, this nesca speaks 2; rebuild the plugin against this nesca"
        );
        let e = PluginError::Timeout {
            plugin: "kdhs".into(),
            after: Duration::from_millis(300),
        };
        assert_eq!(e.to_string(), "plugin kdhs did not answer within 300 ms");
        let e = PluginError::MissingFile {
            path: "/nope.so".into(),
        };
        assert_eq!(e.to_string(), "plugin file /nope.so does not exist");
    }

    #[test]
    fn foreign_text_becomes_one_bounded_line() {
        assert_eq!(one_line(b"a\nb\r\tc"), "a b  c");
        assert_eq!(one_line(b"bad \xff utf8"), "bad \u{fffd} utf8");
        let long = "é".repeat(5000);
        let cut = one_line(long.as_bytes());
        assert!(cut.len() <= MAX_FOREIGN_TEXT + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
