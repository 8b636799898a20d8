#!/usr/bin/env bash
# Times `nesca import` of a 100,000-row FRM.01.03 xlsx (issue 5's benchmark): the whole command
# (read, check, verify the officer's CMS signature, one store transaction) with its peak RSS
# from /usr/bin/time, three runs, each into a fresh demo CA. The list comes from the frm-list
# reading benchmark, which also prints the reading time alone in the same session (the
# baseline of the ratio). Needs SoftHSM (scripts/test.sh installs it), openssl, /usr/bin/time.
#
#   scripts/bench-import.sh [ROWS]      (default 100000)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows="${1:-100000}"
cd "$repo"
# Two builds: with `--example`, cargo builds only the example of the packages named.
cargo build --release -q -p nesca
cargo build --release -q -p nesca-frm-list --example bench_read
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
target/release/examples/bench_read "$rows" --keep "$work"
N="$repo/target/release/nesca"
for run in 1 2 3; do
    d="$work/run$run"
    mkdir "$d"
    "$N" init --demo --dir "$d/ca" > /dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/o.key" \
        -out "$d/o.csr" -subj /CN=officer 2> /dev/null
    "$N" issue --config "$d/ca/nesca.toml" --csr "$d/o.csr" --tckn 17291716060 \
        --given-name MEHMET --surname KAYA --out "$d/o.pem" > /dev/null
    "$N" institution add --config "$d/ca/nesca.toml" --id kurum --name Kurum --tax-no 0680049583 \
        --payer institution --officer-tckn 17291716060 --officer-cert "$d/o.pem" > /dev/null
    openssl cms -sign -binary -md sha256 -outform DER -in "$work/list.xlsx" -signer "$d/o.pem" \
        -inkey "$d/o.key" -out "$d/list.p7s"
    /usr/bin/time -f "run $run: nesca import $rows rows: %e s elapsed, %M KB peak RSS" \
        "$N" import --config "$d/ca/nesca.toml" --institution kurum --file "$work/list.xlsx" \
        --signature "$d/list.p7s" > "$d/out.json"
    python3 -c "import json; r = json.load(open('$d/out.json')); print('       rows:', r['rows'])"
done
