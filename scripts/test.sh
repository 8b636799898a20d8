#!/usr/bin/env bash
# nesca's test command (README): installs what the end-to-end tests need when it is missing —
# SoftHSM 2 and OpenSSL from Debian's apt, DigiCert's pkilint and pyHanko (the PDF signature
# validator of tests/e2e/pdf_validation.rs) from PyPI into a venv each — then runs every test of
# the workspace. Idempotent; works from any directory.
#
#   NESCA_TOOLS_DIR        where the pkilint and pyHanko venvs go (default ~/.cache/nesca-tools)
#   NESCA_PKILINT_DIR      a bin directory that already holds lint_etsi_cert: use it, install nothing
#   NESCA_PKILINT_VERSION  pkilint version to install (default below; "latest" for the newest)
#   NESCA_PYHANKO_DIR      a bin directory whose python already imports pyHanko: use it, install
#                          nothing
#   NESCA_PYHANKO_VERSION  pyHanko version to install (default below, with the
#                          pyhanko-certvalidator it was tested with; "latest" for the newest)
#   NESCA_SCHEMATHESIS_DIR a bin directory that already holds schemathesis: use it, install nothing
#   NESCA_SCHEMATHESIS_VERSION  schemathesis version to install (default below; "latest")
#   NESCA_TEST_POSTGRES_URL the PostgreSQL server the PostgreSQL store's tests create (and drop)
#                          their databases on (default postgres://postgres@127.0.0.1:5432/postgres,
#                          trust authentication); its cluster is restarted by
#                          tests/e2e/pg_faults.rs (pg_ctlcluster NESCA_TEST_POSTGRES_CLUSTER,
#                          default 15/main)
#   NESCA_CHROMIUM         the Chromium the browser tests drive (default /usr/bin/chromium)
#   NESCA_CHROMEDRIVER     the chromedriver that drives it (default /usr/bin/chromedriver)
#   NESCA_FUZZ_SECONDS     how long each fuzz target in fuzz/ runs after the tests (default 15;
#                          0 skips fuzzing; cargo-fuzz is installed with cargo when missing)
#
# Before the tests it checks the code's habits: `cargo fmt --check`, and clippy with every warning
# an error. Extra arguments go to `cargo test` (e.g. `scripts/test.sh -- --test-threads=1`).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

softhsm_module=/usr/lib/softhsm/libsofthsm2.so
tools_dir="${NESCA_TOOLS_DIR:-$HOME/.cache/nesca-tools}"
venv="$tools_dir/pkilint-venv"
pkilint_version="${NESCA_PKILINT_VERSION:-0.13.3}"
pyhanko_venv="$tools_dir/pyhanko-venv"
pyhanko_version="${NESCA_PYHANKO_VERSION:-0.38.0}"
certvalidator_version=0.33.0
pyhanko_ok() { "$1/python" -c 'import pyhanko.sign, pyhanko_certvalidator' >/dev/null 2>&1; }
# schemathesis: the property-based fuzzer of the admin API against docs/openapi.yaml
# (tests/e2e/admin.rs).
schemathesis_venv="$tools_dir/schemathesis-venv"
schemathesis_version="${NESCA_SCHEMATHESIS_VERSION:-4.32.5}"
schemathesis_ok() { [ -x "$1/schemathesis" ] && "$1/schemathesis" --version >/dev/null 2>&1; }

say() { printf 'test.sh: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -f "$softhsm_module" ]; then
    missing+=(softhsm2)
fi
if ! command -v openssl >/dev/null 2>&1; then
    missing+=(openssl)
fi
# curl: the admin API's client (mutual TLS)
if ! command -v curl >/dev/null 2>&1; then
    missing+=(curl)
fi
# libfaketime: the end-to-end tests run `nesca serve` with the system clock moved ahead.
if ! command -v faketime >/dev/null 2>&1; then
    missing+=(faketime)
fi
# chromium, chromium-driver: the portal's browser tests drive a headless Chromium over WebDriver.
if [ -z "${NESCA_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
if [ -z "${NESCA_CHROMEDRIVER:-}" ] && ! command -v chromedriver >/dev/null 2>&1; then
    missing+=(chromium-driver)
fi
need_pkilint=1
if [ -n "${NESCA_PKILINT_DIR:-}" ] && [ -x "$NESCA_PKILINT_DIR/lint_etsi_cert" ]; then
    need_pkilint=0
elif [ -x "$venv/bin/lint_etsi_cert" ] && "$venv/bin/lint_etsi_cert" --help >/dev/null 2>&1; then
    need_pkilint=0
fi
need_pyhanko=1
if [ -n "${NESCA_PYHANKO_DIR:-}" ] && pyhanko_ok "$NESCA_PYHANKO_DIR"; then
    need_pyhanko=0
elif pyhanko_ok "$pyhanko_venv/bin"; then
    need_pyhanko=0
fi
need_schemathesis=1
if [ -n "${NESCA_SCHEMATHESIS_DIR:-}" ] && schemathesis_ok "$NESCA_SCHEMATHESIS_DIR"; then
    need_schemathesis=0
elif schemathesis_ok "$schemathesis_venv/bin"; then
    need_schemathesis=0
fi
if [ "$need_pkilint" = 1 ] || [ "$need_pyhanko" = 1 ] || [ "$need_schemathesis" = 1 ]; then
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3 python3-venv)
    elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        say "installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    else
        say "missing: ${missing[*]}. Install them, then run this script again:"
        echo "sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
if [ ! -f "$softhsm_module" ]; then
    say "SoftHSM module $softhsm_module is still missing after installing softhsm2"
    exit 1
fi

# --- pkilint ---------------------------------------------------------------------------------
if [ "$need_pkilint" = 1 ]; then
    say "installing pkilint into $venv"
    rm -rf "$venv"
    mkdir -p "$tools_dir"
    python3 -m venv "$venv"
    if [ "$pkilint_version" = latest ]; then
        spec=pkilint
    else
        spec="pkilint==$pkilint_version"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
    "$venv/bin/lint_etsi_cert" --help >/dev/null
fi
if [ -z "${NESCA_PKILINT_DIR:-}" ] || [ ! -x "$NESCA_PKILINT_DIR/lint_etsi_cert" ]; then
    export NESCA_PKILINT_DIR="$venv/bin"
fi
say "pkilint: $NESCA_PKILINT_DIR/lint_etsi_cert"

# --- pyHanko ---------------------------------------------------------------------------------
if [ "$need_pyhanko" = 1 ]; then
    say "installing pyHanko into $pyhanko_venv"
    rm -rf "$pyhanko_venv"
    mkdir -p "$tools_dir"
    python3 -m venv "$pyhanko_venv"
    if [ "$pyhanko_version" = latest ]; then
        specs=(pyHanko pyhanko-certvalidator)
    else
        specs=("pyHanko==$pyhanko_version" "pyhanko-certvalidator==$certvalidator_version")
    fi
    "$pyhanko_venv/bin/python" -m pip install --quiet --disable-pip-version-check "${specs[@]}"
    pyhanko_ok "$pyhanko_venv/bin"
fi
if [ -z "${NESCA_PYHANKO_DIR:-}" ] || ! pyhanko_ok "$NESCA_PYHANKO_DIR"; then
    export NESCA_PYHANKO_DIR="$pyhanko_venv/bin"
fi
say "pyHanko: $NESCA_PYHANKO_DIR/python"

# --- schemathesis ----------------------------------------------------------------------------
if [ "$need_schemathesis" = 1 ]; then
    say "installing schemathesis into $schemathesis_venv"
    rm -rf "$schemathesis_venv"
    mkdir -p "$tools_dir"
    python3 -m venv "$schemathesis_venv"
    if [ "$schemathesis_version" = latest ]; then
        spec=schemathesis
    else
        spec="schemathesis==$schemathesis_version"
    fi
    "$schemathesis_venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
    schemathesis_ok "$schemathesis_venv/bin"
fi
if [ -z "${NESCA_SCHEMATHESIS_DIR:-}" ] || ! schemathesis_ok "$NESCA_SCHEMATHESIS_DIR"; then
    export NESCA_SCHEMATHESIS_DIR="$schemathesis_venv/bin"
fi
say "schemathesis: $NESCA_SCHEMATHESIS_DIR/schemathesis"

# --- PostgreSQL --------------------------------------------------------------------------------
# The store's conformance suite and the multi-node tests run against a real server; a stopped
# local cluster is started.
pg_url="${NESCA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_ok() { command -v psql >/dev/null 2>&1 && psql "$pg_url" -Atqc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_ok && command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    cluster="${NESCA_TEST_POSTGRES_CLUSTER:-15/main}"
    say "starting PostgreSQL cluster $cluster"
    pg_ctlcluster "${cluster%/*}" "${cluster#*/}" start || true
    for _ in $(seq 1 50); do pg_ok && break; sleep 0.2; done
fi
if ! pg_ok; then
    say "no PostgreSQL server answers at $pg_url (psql $(command -v psql >/dev/null && echo found || echo missing))."
    say "Start one that lets this user create databases (trust authentication on 127.0.0.1), or set NESCA_TEST_POSTGRES_URL."
    exit 1
fi
export NESCA_TEST_POSTGRES_URL="$pg_url"
say "PostgreSQL: $pg_url"

# --- tests -----------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is not on PATH: install Rust (https://rustup.rs), then run this script again"
    exit 1
fi
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked --features nesca/test-clock -- -D warnings
cargo test --workspace --locked --features nesca/test-clock "$@"

# --- fuzzing ---------------------------------------------------------------------------------
# Every target in fuzz/ for a bounded time: input from outside must never panic. No sanitizer
# (`-s none`): the code is safe Rust, a panic is what is looked for, and the build is minutes
# shorter. RUSTC_BOOTSTRAP lets the stable toolchain take cargo-fuzz's flags.
fuzz_seconds="${NESCA_FUZZ_SECONDS:-15}"
if [ "$fuzz_seconds" -gt 0 ]; then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz"
        cargo install --quiet --locked cargo-fuzz --version 0.13.2
    fi
    cd "$repo/fuzz"
    log="$(mktemp)"
    for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
        say "fuzz $target for ${fuzz_seconds} s"
        if ! RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$target" -- \
            -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
            tail -n 40 "$log" >&2
            say "fuzz target $target failed (the input is under fuzz/artifacts/$target/)"
            exit 1
        fi
        grep -E '^Done [0-9]+ runs' "$log" >&2 || true
    done
    rm -f "$log"
fi
