//! The database's files on disk: they hold personal data (names, T.C. Kimlik No, e-mail
//! addresses and mobile numbers) and secrets' hashes (access passwords, SMS codes, security
//! words), so they are the owner's alone.
//!
//! A new database file is created 0600 before SQLite opens it (its `-wal` and `-shm` files
//! take the database file's mode); a database, WAL or shared-memory file that group or others
//! may reach, or a directory holding them that group or others may read or write, is refused
//! before anything is opened.

use std::path::{Path, PathBuf};

use crate::error::{CaError, Result};

/// The permission bits group and others must not have on the database's files.
pub(crate) const FILE_FORBIDDEN: u32 = 0o077;
/// The permission bits group and others must not have on the database's directory (search
/// without read, `0711`, is allowed: it lists nothing).
pub(crate) const DIR_FORBIDDEN: u32 = 0o066;

/// The database file and the files SQLite keeps beside it in WAL mode.
pub(crate) fn database_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Refuses an exposed directory or database file, then creates the database file 0600 when
/// it does not exist yet.
pub(crate) fn prepare(path: &Path) -> Result<()> {
    check(path)?;
    create_private(path)?;
    check(path)
}

/// Refuses the database's directory when group or others can read or write it, and the
/// database, `-wal` and `-shm` files that exist when group or others have any access.
pub(crate) fn check(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    check_mode(&dir, DIR_FORBIDDEN, "chmod 700 it")?;
    for file in database_files(path) {
        if file.exists() {
            check_mode(&file, FILE_FORBIDDEN, "chmod 600 it")?;
        }
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 unless it exists (SQLite then initialises it).
pub(crate) fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CaError::Store {
            operation: "open",
            reason: format!("cannot create {}: {e}", path.display()),
            source: None,
        }),
    }
}

/// Refuses `path` when its mode has any of the `forbidden` bits.
#[cfg(unix)]
pub(crate) fn check_mode(path: &Path, forbidden: u32, fix: &'static str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| CaError::Exposed {
            path: path.display().to_string(),
            problem: format!("cannot be checked: {e}"),
            fix: "make it exist and readable by nesca's user",
            source: Some(e),
        })?
        .permissions()
        .mode()
        & 0o777;
    let exposed = mode & forbidden;
    if exposed == 0 {
        return Ok(());
    }
    let access = match (exposed & 0o044 != 0, exposed & 0o022 != 0) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => "executable",
    };
    Err(CaError::Exposed {
        path: path.display().to_string(),
        problem: format!("is {access} by group or others (mode {mode:04o})"),
        fix,
        source: None,
    })
}

#[cfg(not(unix))]
pub(crate) fn check_mode(_: &Path, _: u32, _: &'static str) -> Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::store::SqliteStore;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_and_its_wal_are_the_owners_only() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("new.db");
        let store = SqliteStore::open(&path).unwrap();
        for file in database_files(&path) {
            assert!(file.exists(), "{}", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        drop(store);
    }

    #[test]
    fn an_exposed_database_or_directory_is_refused_naming_it() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("x.db");
        drop(SqliteStore::open(&path).unwrap());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert_eq!(
            e,
            format!(
                "{} is readable by group or others (mode 0644); chmod 600 it",
                path.display()
            )
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(
            e.contains("is writable by group or others (mode 0620)"),
            "{e}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        // The directory: others listing or replacing the files.
        for (bits, word) in [(0o755, "readable"), (0o733, "writable")] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(bits)).unwrap();
            let e = SqliteStore::open(&path).err().unwrap().to_string();
            assert_eq!(
                e,
                format!(
                    "{} is {word} by group or others (mode {bits:04o}); chmod 700 it",
                    dir.path().display()
                )
            );
        }
        // Search only lists nothing: allowed.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
        drop(SqliteStore::open(&path).unwrap());

        // A WAL left readable (copied in by hand) is refused too.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let wal = database_files(&path)[1].clone();
        fs::write(&wal, b"").unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o604)).unwrap();
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!("{} is readable", wal.display())),
            "{e}"
        );
    }

    #[test]
    fn a_refused_directory_creates_no_database() {
        let dir = crate::testkit::private_tempdir();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
        let path = dir.path().join("never.db");
        assert!(SqliteStore::open(&path).is_err());
        assert!(!path.exists());
    }
}
