//! One module per command.

pub mod audit;
pub mod bench;
pub mod cert;
pub mod init;
pub mod issue;

use std::io::Write;
use std::path::Path;

use crate::error::{CliError, Result};

/// Writes a file that must not exist yet; `private` makes it 0600 from the first byte.
pub fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CliError::Exists(path.display().to_string()),
        _ => CliError::io("cannot create", path)(e),
    })?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(CliError::io("cannot write", path))
}

/// Replaces a file atomically: write a temporary beside it, sync, rename.
pub fn write_replace(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(contents).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(CliError::io("cannot write", path))
}

/// PEM of one DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}
