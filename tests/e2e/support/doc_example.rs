//! The shell commands of a document's worked example: the ```sh blocks under one heading, for a
//! test that runs them as written.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

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

/// Copies `from` to `DIR/NAME`, keeping its permission bits (keys stay 0600): a file the
/// example's reader is said to have.
#[track_caller]
pub(crate) fn give(from: &Path, dir: &Path, name: &str) {
    fs::copy(from, dir.join(name)).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
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
