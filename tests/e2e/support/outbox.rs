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

/// Whether a message's `To:` line names `recipient`: an e-mail address, or a mobile number
/// written `+905…` or `05…` (a leading `0` is left out: the message has `+905…`).
pub(crate) fn addressed_to(message: &str, recipient: &str) -> bool {
    let want = recipient.strip_prefix('0').unwrap_or(recipient);
    message
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .is_some_and(|t| t.trim().ends_with(want))
}

/// The texts of the messages in `dir` addressed to `recipient`, oldest first.
pub(crate) fn messages_to(dir: &Path, recipient: &str) -> Vec<String> {
    outbox_texts(dir)
        .into_iter()
        .filter(|t| addressed_to(t, recipient))
        .collect()
}

/// The newest message in `dir` addressed to `recipient`.
pub(crate) fn newest_to(dir: &Path, recipient: &str) -> Option<String> {
    messages_to(dir, recipient).pop()
}

/// The access password of an e-mail: the rest of its line that begins with
/// `Erişim parolası: `, trimmed.
pub(crate) fn access_password_in(mail: &str) -> Option<String> {
    mail.lines()
        .find_map(|l| l.strip_prefix("Erişim parolası: "))
        .map(|p| p.trim().to_owned())
}

/// The six characters after `mark` in an SMS (`kodunuz: `, `giris kodunuz: `…): its code,
/// when `mark` is there. [`is_code`] tells whether they are a code.
pub(crate) fn code_after(sms: &str, mark: &str) -> Option<String> {
    sms.split(mark)
        .nth(1)
        .map(|rest| rest.chars().take(6).collect())
}

/// Whether `code` is an SMS code: six ASCII digits.
pub(crate) fn is_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}
