//! The plugins' shared libraries as `cargo test` built them.

use std::path::PathBuf;

/// A test plugin built by `cargo test --workspace` (or `cargo build --workspace`).
pub(crate) fn test_plugin(name: &str) -> PathBuf {
    built_plugin(&format!("nesca_test_plugin_{name}"))
}

/// The shared library of the plugin crate whose library is called `lib` (`lib{lib}.so`), as
/// `cargo test -p nesca` builds it: the plugins are dev-dependencies of the nesca package.
pub(crate) fn built_plugin(lib: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_nesca"));
    let dir = exe.parent().expect("target directory");
    let file = format!("lib{lib}.so");
    // deps/ first: `cargo test` rebuilds the plugins there (they are dev-dependencies), while a
    // copy in target/debug is only as fresh as the last `cargo build`.
    for candidate in [dir.join("deps").join(&file), dir.join(&file)] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{file} is not built in {}: run `cargo test -p nesca` (it builds the plugins as \
         dev-dependencies) or `cargo build --workspace` (scripts/test.sh does)",
        dir.display()
    );
}
