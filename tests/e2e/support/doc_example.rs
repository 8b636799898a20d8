//! The shell commands of a document's worked example: the ```sh blocks under one heading, for a
//! test that runs them as written ([`run_script`]) and checks what they printed
//! ([`assert_in_order`]).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The document `docs/channels/NAME` of the repository.
pub(crate) fn channel_doc(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/channels")
        .join(name)
}

/// The variables the ```sh blocks under `heading` of `markdown` export (`export NAME=…`, one a
/// line): what a test must set, and no more.
#[track_caller]
pub(crate) fn exported_variables(markdown: &Path, heading: &str) -> BTreeSet<String> {
    sh_blocks(markdown, heading)
        .iter()
        .flat_map(|b| b.lines())
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// Panics unless `vars` sets exactly the variables the ```sh blocks under `heading` of
/// `markdown` export: what the document tells a reader to set.
#[track_caller]
pub(crate) fn assert_documented_variables(markdown: &Path, heading: &str, vars: &[(&str, String)]) {
    let set: BTreeSet<String> = vars.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        set,
        exported_variables(markdown, heading),
        "the test sets other variables than {} documents",
        markdown.display()
    );
}

/// A line a person types into a worked example: what it is (named when it never comes), and
/// the function that gives it once it is known.
pub(crate) type Typed<'a> = (&'a str, &'a dyn Fn() -> Option<String>);

/// What a worked example's script printed.
pub(crate) struct ScriptRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    pub(crate) fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit status and the output, for assertion messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "the script exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Collects a child's pipe on a thread of its own (so that neither pipe fills up).
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Kills `child` when dropped (a panicking test leaves no script behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `script` (written to `DIR.sh`) with `bash -euo pipefail` in `dir`, with `vars` and
/// nothing else of the test's environment but PATH (HOME is `dir`: no `~/.curlrc` of the
/// machine's). `typed` are the lines a person types, in order: each is written to the script's
/// standard input as soon as it is known (its function gives it), while the script waits for
/// it in `read`; then the standard input is closed. Never shows what was typed. Panics when
/// the script or a typed line takes longer than `limit`.
#[track_caller]
pub(crate) fn run_script(
    dir: &Path,
    script: &str,
    vars: &[(&str, String)],
    typed: &[Typed],
    limit: Duration,
) -> ScriptRun {
    let path = dir.with_extension("sh");
    fs::write(&path, script).expect("the example's script");
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail"])
        .arg(&path)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = Killed(cmd.spawn().expect("bash"));
    let mut stdin = child.0.stdin.take().expect("stdin");
    let stdout = collect(child.0.stdout.take().expect("stdout"));
    let stderr = collect(child.0.stderr.take().expect("stderr"));
    let start = Instant::now();
    'typing: for (what, value) in typed {
        loop {
            if let Some(v) = value() {
                // A script that ended already reads nothing more: its output says why.
                let _ = writeln!(stdin, "{v}");
                let _ = stdin.flush();
                break;
            }
            if child.0.try_wait().ok().flatten().is_some() {
                break 'typing;
            }
            assert!(
                start.elapsed() < limit,
                "gave up waiting for {what} (the script is still running)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(stdin);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for bash") {
            break status;
        }
        assert!(start.elapsed() < limit, "the worked example did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    ScriptRun {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Panics unless `text` holds each of `expected`, in this order, naming `what` printed it and
/// showing `described`.
#[track_caller]
pub(crate) fn assert_in_order(what: &str, text: &str, expected: &[&str], described: &str) {
    let mut rest = text;
    for want in expected {
        match rest.find(want) {
            Some(at) => rest = &rest[at + want.len()..],
            None => panic!("{what} did not print {want:?} (in order):\n{described}"),
        }
    }
}

/// Copies `from` to `DIR/NAME`, keeping its permission bits (keys stay 0600): a file the
/// example's reader is said to have.
#[track_caller]
pub(crate) fn give(from: &Path, dir: &Path, name: &str) {
    fs::copy(from, dir.join(name)).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
}

/// The example wrote `names` in `dir` readable by its owner only (its `umask 077`): they hold
/// personal data, keys or a session token.
#[track_caller]
pub(crate) fn assert_private_files(dir: &Path, names: &[&str]) {
    use std::os::unix::fs::PermissionsExt as _;
    for name in names {
        let mode = fs::metadata(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others: {mode:o}");
    }
}

/// The JSON file `name` the example left in `dir`.
#[track_caller]
pub(crate) fn json_file(dir: &Path, name: &str) -> Value {
    let text = fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {text}"))
}

/// The level of a markdown heading line (`## Title` is 2), `None` for any other line.
fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    let rest = &line[hashes..];
    ((1..=6).contains(&hashes) && (rest.is_empty() || rest.starts_with(' '))).then_some(hashes)
}

/// The ```sh blocks under the heading `heading` (a whole line such as `## Worked example`) of
/// the markdown file `markdown`, and under its subheadings, up to the next heading of the same
/// or a higher level: each block's lines, in order. Lines inside fences are never headings
/// (a shell comment starts with `#`). Panics when the file cannot be read, the heading is not
/// there once, a fence is left open, or there is no ```sh block.
#[track_caller]
pub(crate) fn sh_blocks(markdown: &Path, heading: &str) -> Vec<String> {
    let text = fs::read_to_string(markdown)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", markdown.display()));
    let level =
        heading_level(heading).unwrap_or_else(|| panic!("{heading:?} is not a markdown heading"));
    let mut blocks = Vec::new();
    let mut found = 0;
    let mut inside = false;
    // The block being read: `Some(lines)` inside a ```sh fence, `None` in another fence.
    let mut fence: Option<Option<Vec<&str>>> = None;
    for line in text.lines() {
        match &mut fence {
            Some(block) => {
                if line.trim_end() == "```" {
                    if let Some(lines) = block.take() {
                        blocks.push(lines.join("\n") + "\n");
                    }
                    fence = None;
                } else if let Some(lines) = block {
                    lines.push(line);
                }
                continue;
            }
            None if line.starts_with("```") => {
                let info = line.trim_start_matches('`').trim();
                fence = Some((inside && info == "sh").then(Vec::new));
                continue;
            }
            None => {}
        }
        if let Some(l) = heading_level(line) {
            if line.trim_end() == heading {
                found += 1;
                inside = true;
            } else if l <= level {
                inside = false;
            }
        }
    }
    assert!(
        fence.is_none(),
        "{}: a code fence is not closed",
        markdown.display()
    );
    assert_eq!(
        found,
        1,
        "{}: the heading {heading:?} must be there once",
        markdown.display()
    );
    assert!(
        !blocks.is_empty(),
        "{}: no ```sh block under {heading:?}",
        markdown.display()
    );
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_under_a_heading_and_its_subheadings_only() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("doc.md");
        let text = "# Title\n\n```sh\nbefore\n```\n\n## Worked example\n\n```sh\none\n# a comment\n```\n\n\
                    ```text\n# output\n```\n\n### Step\n\n```sh\ntwo\n```\n\n```json\n{}\n```\n\n\
                    ## After\n\n```sh\nafter\n```\n";
        fs::write(&md, text).unwrap();
        assert_eq!(
            sh_blocks(&md, "## Worked example"),
            vec!["one\n# a comment\n".to_string(), "two\n".to_string()]
        );
        assert_eq!(sh_blocks(&md, "# Title").len(), 4);
    }
}
