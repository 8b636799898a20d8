//! What `nesca serve`'s outbox wrote into a demo's directories (`outbox/email`,
//! `outbox/sms`): one file per message, named by its outbox id, so their names are their order.

use std::fs;
use std::path::{Path, PathBuf};

/// The message files in `dir`, oldest first; a file being written (a dot-name) is left out.
pub(crate) fn outbox_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files
}

/// The texts of the messages in `dir`, oldest first.
pub(crate) fn outbox_texts(dir: &Path) -> Vec<String> {
    outbox_files(dir)
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .collect()
}
