//! One module per command.

pub(crate) mod admin;
pub(crate) mod applicant;
pub(crate) mod audit;
pub(crate) mod bench;
pub(crate) mod bench_crl;
pub(crate) mod bench_plugin;
pub(crate) mod billing;
pub(crate) mod ca;
pub(crate) mod cert;
pub(crate) mod crl;
pub(crate) mod import;
pub(crate) mod init;
pub(crate) mod institution;
pub(crate) mod issue;
pub(crate) mod lifecycle;
pub(crate) mod operator;
pub(crate) mod outbox;
pub(crate) mod partner;
pub(crate) mod plugins;
pub(crate) mod production;
pub(crate) mod root;
pub(crate) mod transport_key;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};

/// Writes a file that must not exist yet; `private` makes it 0600 from the first byte.
/// Replaces `path` with `contents` whole: written to a new file of a random name beside it
/// (created exclusively: a link planted there is never followed), synced, renamed over it.
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    write_new(&tmp, contents, false)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::io("cannot write", path)(e)
    })
}

pub(crate) fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
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

/// An output file claimed before the work that fills it: its temporary sibling is created at
/// once, so an unwritable path is refused before anything is signed or stored; the content
/// replaces the file atomically (write, sync, rename) on [`OutFile::commit`].
pub(crate) struct OutFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
}

impl OutFile {
    /// Creates the temporary file beside `path`; `field` names the option in errors.
    ///
    /// The file is its owner's alone (0600): a person's certificate names them with their
    /// T.C. Kimlik No, an import report the rows of a list. The operator hands it on.
    pub(crate) fn claim(field: &'static str, path: &Path) -> Result<OutFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&tmp).map_err(|e| CliError::Argument {
            field,
            rule: format!("cannot write {}: {e}", path.display()),
        })?;
        Ok(OutFile {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// The temporary file, for content streamed into it before [`OutFile::commit`] (which
    /// then appends what it is given, possibly nothing, and moves the file into place).
    pub(crate) fn file(&mut self) -> Result<&mut std::fs::File> {
        self.file.as_mut().ok_or_else(|| {
            CliError::io("cannot write", &self.path)(std::io::ErrorKind::Other.into())
        })
    }

    /// Writes the content and moves it into place.
    pub(crate) fn commit(mut self, contents: &[u8]) -> Result<()> {
        let mut file = self.file.take().ok_or_else(|| {
            CliError::io("cannot write", &self.path)(std::io::ErrorKind::Other.into())
        })?;
        file.write_all(contents)
            .and_then(|_| file.sync_all())
            .and_then(|_| std::fs::rename(&self.tmp, &self.path))
            .map_err(CliError::io("cannot write", &self.path))
    }
}

impl OutFile {
    /// Writes a certificate just issued (and stored) as PEM; if the file cannot be written,
    /// prints the PEM on stdout rather than lose it, and fails.
    pub(crate) fn deliver_certificate(self, cert_der: &[u8]) -> Result<()> {
        let pem = cert_pem(cert_der);
        self.commit(pem.as_bytes()).inspect_err(|_| {
            let _ = emit(&pem);
        })
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        // Committed: the temporary name no longer exists and this does nothing.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// `println!` that ends quietly on a closed pipe and returns errors instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use outln;

/// Writes to stdout; a reader that went away (`| head`) ends the output quietly instead of
/// a panic.
pub(crate) fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::io(
            "cannot write",
            Path::new("standard output"),
        )(e)),
        _ => Ok(()),
    }
}

/// Reads a regular file of at most `max` bytes; `field` names the option in errors. The file
/// is opened once and read through a cap, so neither a FIFO, a device nor a file that grows
/// after the check is read past `max`.
pub(crate) fn read_limited(field: &'static str, path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let too_big = |len: u64| CliError::Argument {
        field,
        rule: format!("{len} bytes is more than the {max} accepted"),
    };
    let file = std::fs::File::open(path).map_err(CliError::io("cannot read", path))?;
    let meta = file.metadata().map_err(CliError::io("cannot read", path))?;
    if !meta.is_file() {
        return Err(CliError::Argument {
            field,
            rule: format!("{} is not a regular file", path.display()),
        });
    }
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(CliError::io("cannot read", path))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The DER of a file given as DER or as PEM with one of `labels`.
pub(crate) fn pem_or_der(field: &'static str, bytes: Vec<u8>, labels: &[&str]) -> Result<Vec<u8>> {
    let text = bytes.trim_ascii_start();
    if !text.starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    match der::pem::decode_vec(text) {
        Ok((label, der)) if labels.contains(&label) => Ok(der),
        Ok((label, _)) => Err(CliError::Argument {
            field,
            rule: format!(
                "PEM label is \"{label}\", expected {}",
                labels
                    .iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }),
        Err(e) => Err(CliError::Argument {
            field,
            rule: format!("PEM does not decode: {e}"),
        }),
    }
}

/// PEM of one DER certificate.
pub(crate) fn cert_pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a regular file is read, and never past the cap: a device or a directory is
    /// refused before anything is read from it.
    #[test]
    fn read_limited_reads_regular_files_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_limited("f", &file, 5).unwrap(), b"12345");
        assert!(read_limited("f", &file, 4)
            .unwrap_err()
            .to_string()
            .contains("more than the 4 accepted"));
        for not_regular in [dir.path(), Path::new("/dev/zero")] {
            let e = read_limited("f", not_regular, 1024)
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }
}
