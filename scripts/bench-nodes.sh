#!/usr/bin/env bash
# nesca on several nodes sharing one PostgreSQL database (docs/multi-node.md), measured in one
# session, each figure against its baseline run the same way just before it:
#   - issuance: one `nesca bench issue --config` process (a node) alone, then two at once on
#     the same database and token (two nodes issuing together): issuances per second, summed;
#   - OCSP GET of a pre-produced response: wrk against one `nesca serve`, then two wrk at once
#     against two `nesca serve` nodes: requests per second, summed.
# Figures go in docs/BENCHMARKS.md. Both nodes run on this machine (2 cores here): two nodes
# share the cores one node has, so the sum shows what sharing the store costs, not what a
# second machine would add.
#
#   scripts/bench-nodes.sh [SECONDS] [CONNECTIONS]      defaults: 10 s, 64 connections
#   NESCA_BENCH_POSTGRES_URL   the server the database is created on and dropped from
#                              (default postgres://postgres@127.0.0.1:5432/postgres)
#
# Needs wrk, curl, openssl, psql and softhsm2 (installed with apt-get when missing and run as
# root).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-10}"
conns="${2:-64}"
server_url="${NESCA_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
say() { printf 'bench-nodes: %s\n' "$*" >&2; }

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v softhsm2-util >/dev/null || missing+=(softhsm2)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "missing: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
fi

(cd "$repo" && cargo build --release --locked -q -p nesca)
nesca="$repo/target/release/nesca"

work="$(mktemp -d /tmp/nesca-bench-nodes.XXXXXX)"
db="nesca_bench_nodes_$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$server_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

psql "$server_url" -qc "CREATE DATABASE $db" >/dev/null
# The server's URL with its database replaced, its ?parameters kept.
base="${server_url%%\?*}"
params=""
case "$server_url" in *\?*) params="?${server_url#*\?}" ;; esac
db_url="${base%/*}/$db$params"
"$nesca" init --demo --dir "$work/ca" --postgres-url "$db_url" >/dev/null
a="$work/ca/nesca.toml"
b="$work/ca/node-b.toml"
cp "$a" "$b"

# --- issuance: one node, then two together, twice (alternating: the database grows and
# checkpoints as it goes, so neither side gets only the later, slower part) -----------------
# The issuance/s column of the 2-worker row of `nesca bench issue`.
issuance_rate() { awk '$2 == 2 { print $4 }' "$1"; }
ones=()
twos=()
for round in 1 2; do
    say "issuance round $round: one node, ${seconds} s per row"
    "$nesca" bench issue --config "$a" --seconds "$seconds" >"$work/one-$round.txt"
    ones+=("$(issuance_rate "$work/one-$round.txt")")
    say "issuance round $round: two nodes at once"
    "$nesca" bench issue --config "$a" --seconds "$seconds" >"$work/two-a-$round.txt" &
    pa=$!
    "$nesca" bench issue --config "$b" --seconds "$seconds" >"$work/two-b-$round.txt" &
    pb=$!
    wait "$pa" "$pb"
    twos+=("$(awk -v x="$(issuance_rate "$work/two-a-$round.txt")" -v y="$(issuance_rate "$work/two-b-$round.txt")" 'BEGIN { printf "%.0f", x + y }')")
    cat "$work/one-$round.txt" "$work/two-a-$round.txt" "$work/two-b-$round.txt" >&2
done

# --- OCSP GET: one node, then two --------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/leaf.key" \
    -out "$work/leaf.csr" -subj "/CN=bench" 2>/dev/null
"$nesca" issue --config "$a" --csr "$work/leaf.csr" --tckn 10000000146 \
    --given-name "AYŞE" --surname "YILMAZ" --out "$work/leaf.pem" >/dev/null
start_node() { # config name -> port
    local port
    port="$(free_port)"
    sed -i "/^\[server\]/,/^\[/ s/^listen = .*/listen = \"127.0.0.1:$port\"/" "$1"
    sed -i "/^\[admin\]/,/^\[/ s/^listen = .*/listen = \"127.0.0.1:0\"/" "$1"
    sed -i "/^\[portal\]/,/^\[/ s/^listen = .*/listen = \"127.0.0.1:0\"/" "$1"
    "$nesca" serve --config "$1" >"$work/$2.out" 2>"$work/$2.err" &
    pids+=($!)
    for _ in $(seq 1 100); do
        grep -q "listening on" "$work/$2.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "listening on" "$work/$2.out" || { say "$2 did not start: $(cat "$work/$2.err")"; exit 1; }
    echo "$port"
}
port_a="$(start_node "$a" node-a)"
port_b="$(start_node "$b" node-b)"
openssl ocsp -issuer "$work/ca/issuing-ca.pem" -cert "$work/leaf.pem" -no_nonce \
    -reqout "$work/req.der" >/dev/null 2>&1
b64="$(base64 -w0 "$work/req.der" | tr '+/' '-_')"
for port in "$port_a" "$port_b"; do
    curl -sf -o "$work/resp.der" "http://127.0.0.1:$port/ocsp/$b64"
    openssl ocsp -respin "$work/resp.der" -issuer "$work/ca/issuing-ca.pem" -cert "$work/leaf.pem" \
        -CAfile "$work/ca/ca-chain.pem" 2>&1 | grep -q ": good" || { say "node on $port: not good"; exit 1; }
done
sleep 1
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
say "OCSP GET: one node, wrk -t2 -c$conns -d${seconds}s"
wrk -t2 -c"$conns" -d"${seconds}s" "http://127.0.0.1:$port_a/ocsp/$b64" >"$work/ocsp-one.txt"
say "OCSP GET: two nodes, two wrk -t1 -c$((conns / 2)) at once"
wrk -t1 -c"$((conns / 2))" -d"${seconds}s" "http://127.0.0.1:$port_a/ocsp/$b64" >"$work/ocsp-a.txt" &
wa=$!
wrk -t1 -c"$((conns / 2))" -d"${seconds}s" "http://127.0.0.1:$port_b/ocsp/$b64" >"$work/ocsp-b.txt" &
wb=$!
wait "$wa" "$wb"

printf '%-44s %14s\n' "measurement" "per second"
printf '%-44s %14s\n' "issuance, one node (2 workers), rounds 1 2" "${ones[*]}"
printf '%-44s %14s\n' "issuance, two nodes together (sum), rounds" "${twos[*]}"
printf '%-44s %14s\n' "OCSP GET, one node" "$(rps "$work/ocsp-one.txt")"
printf '%-44s %14s\n' "OCSP GET, two nodes together (sum)" "$(awk -v x="$(rps "$work/ocsp-a.txt")" -v y="$(rps "$work/ocsp-b.txt")" 'BEGIN { printf "%.0f", x + y }')"
awk -v o1="$(rps "$work/ocsp-one.txt")" -v oa="$(rps "$work/ocsp-a.txt")" \
    -v ob="$(rps "$work/ocsp-b.txt")" -v ones="${ones[*]}" -v twos="${twos[*]}" 'BEGIN {
    n = split(ones, one, " "); split(twos, two, " ")
    for (i = 1; i <= n; i++) printf "round %d: two nodes / one: issuance %.2fx\n", i, two[i] / one[i]
    printf "OCSP GET: two nodes / one %.2fx\n", (oa + ob) / o1 }'
grep -hE 'Non-2xx|Socket errors' "$work"/ocsp-*.txt || true
