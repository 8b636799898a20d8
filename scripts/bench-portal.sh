#!/usr/bin/env bash
# The portal's pages under load, against a baseline in the same run: a demo CA (release build),
# a holder issued with a security word and a mobile number, `nesca serve`; then wrk, one after
# the other for SECS seconds each with 8 connections over HTTPS on 127.0.0.1:
#   1. GET /                 the home page (no store access): the listener's baseline
#   2. GET /sertifika        signed in: the session read and touched, the certificate list
#   3. POST /sertifika/giris a wrong security word: one argon2 check each, at most one per core
#                            at once (the rest answered 503 at once); past the identity's limit
#                            still one check each (a refusal costs what a check costs)
# and the size of each page, and the server's resident memory before and after the flood. Prints a Markdown table for docs/BENCHMARKS.md.
#
#   scripts/bench-portal.sh [SECS]     (default 10)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-10}"
say() { printf 'bench-portal: %s\n' "$*" >&2; }
for tool in wrk curl openssl; do
    command -v "$tool" >/dev/null || { say "needs $tool (apt-get install -y $tool)"; exit 1; }
done
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p nesca
nesca="$repo/target/release/nesca"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$nesca" init --demo --dir "$work/ca" >/dev/null
cfg="$work/ca/nesca.toml"
sed -i "/^\[server\]/,/^\[/ s/^listen = .*/listen = \"127.0.0.1:$(free_port)\"/" "$cfg"
sed -i "/^\[admin\]/,/^\[/ s/^listen = .*/listen = \"127.0.0.1:0\"/" "$cfg"
portal_port="$(free_port)"
sed -i "/^\[portal\]/,/^\[/ s/^listen = .*/listen = \"127.0.0.1:$portal_port\"/" "$cfg"
printf '\n[outbox]\ninterval_seconds = 1\n' >>"$cfg"
(umask 077 && printf 'Papatya77\n' >"$work/word")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/k.pem" \
    -subj /CN=bench -out "$work/r.csr" 2>/dev/null
"$nesca" issue --config "$cfg" --csr "$work/r.csr" --tckn 10000000146 --given-name AYŞE \
    --surname YILMAZ --out "$work/c.pem" --security-word-file "$work/word" --mobile 05321234567 >/dev/null
"$nesca" serve --config "$cfg" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "portal (TLS)" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
base="https://127.0.0.1:$portal_port"
c=(curl -sS --cacert "$work/ca/ca-chain.pem" -c "$work/jar" -b "$work/jar")

# Signed in once, by hand: the word, then the SMS code from the outbox.
"${c[@]}" -o /dev/null "$base/sertifika"
csrf="$(awk '$6 == "__Host-nesca_csrf" {print $7}' "$work/jar")"
"${c[@]}" -o /dev/null --data "csrf=$csrf&tckn=10000000146&security_word=Papatya77" "$base/sertifika/giris"
code=""
for _ in $(seq 1 100); do
    code="$( (cat "$work/ca/outbox/sms/"*.sms 2>/dev/null || true) | sed -n 's/.*giris kodunuz: \([0-9]\{6\}\).*/\1/p' | tail -1)"
    [ -n "$code" ] && break
    sleep 0.1
done
[ -n "$code" ] || { say "no SMS code arrived"; exit 1; }
"${c[@]}" -o /dev/null --data "csrf=$csrf&code=$code" "$base/sertifika/kod"
session="$(awk '$6 == "__Host-nesca_holder" {print $7}' "$work/jar")"
cookie="Cookie: __Host-nesca_csrf=$csrf; __Host-nesca_holder=$session"
"${c[@]}" "$base/sertifika" | grep -q "Sertifikalarım" || { say "not signed in"; exit 1; }

size() { "${c[@]}" -H "$cookie" -o /dev/null -w '%{size_download}' "$@"; }
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "csrf=$csrf&tckn=10000000146&security_word=Yanlis99"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "__Host-nesca_csrf=$csrf"
LUA
run() { # name, extra wrk args…, url
    local name="$1"; shift
    local out; out="$(wrk -t2 -c8 -d"${secs}s" --latency "$@")"
    local total rps p50 p99 non2xx
    total="$(awk '/requests in/ {print $1}' <<<"$out")"
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" \
        "$((total - ${non2xx:-0}))" "${non2xx:-0}"
}
rss() { ps -o rss= -p "${pids[0]}" | tr -d ' '; }
echo "| request | requests/s | p50 | p99 | 2xx answers | other answers |"
echo "| --- | --- | --- | --- | --- | --- |"
run "GET / (baseline)" "$base/"
run "GET /sertifika, signed in" -H "$cookie" "$base/sertifika"
before="$(rss)"
run "POST /sertifika/giris, wrong word" -s "$work/post.lua" "$base/sertifika/giris"
echo
echo "nesca serve's resident memory: ${before} KiB before the sign-in flood, $(rss) KiB after"
echo "page sizes: / $(size "$base/") bytes, /sertifika signed in $(size "$base/sertifika") bytes"
echo "cores: $(nproc)"
