#!/usr/bin/env bash
# OCSP GET throughput and latency of `nesca serve` (pre-produced responses) measured with wrk on
# loopback, in the same run as the two baselines of issue 3:
#   - nginx serving the same response bytes as a static file (the practical ceiling);
#   - `openssl ocsp -index … -port` (the common baseline; it signs every response).
# Prints requests/s and p50/p99 for each and the ratios. Figures go in docs/BENCHMARKS.md.
#
#   scripts/bench-ocsp.sh [SECONDS] [CONNECTIONS] [ALGORITHM]
#       defaults: 10 s, 64 connections, ecdsa-p256 (or rsa-2048): the key algorithm of nesca's
#       CA and OCSP signer and of the openssl responder's key alike.
#
# Needs wrk, nginx, curl and openssl (installed with apt-get when missing and run as root).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-10}"
conns="${2:-64}"
alg="${3:-ecdsa-p256}"
case "$alg" in
    ecdsa-p256) okey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa-2048) okey=(-newkey rsa:2048) ;;
    *) echo "bench-ocsp: algorithm must be ecdsa-p256 or rsa-2048" >&2; exit 2 ;;
esac
say() { printf 'bench-ocsp: %s\n' "$*" >&2; }

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
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
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

(cd "$repo" && cargo build --release --locked -q -p nesca)
nesca="$repo/target/release/nesca"

work="$(mktemp -d /tmp/nesca-bench-ocsp.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        pkill -9 -P "$p" 2>/dev/null || true   # openssl -multi's children
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# --- nesca: a demo CA, one certificate, `nesca serve` -----------------------------------------
"$nesca" init --demo --dir "$work/ca" --algorithm "$alg" >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/leaf.key" \
    -out "$work/leaf.csr" -subj "/CN=bench" 2>/dev/null
"$nesca" issue --config "$work/ca/nesca.toml" --csr "$work/leaf.csr" --tckn 10000000146 \
    --given-name "AYŞE" --surname "YILMAZ" --out "$work/leaf.pem" >/dev/null
nesca_port="$(free_port)"
sed -i "s/^listen = \"127.0.0.1:8080\"/listen = \"127.0.0.1:$nesca_port\"/" "$work/ca/nesca.toml"
"$nesca" serve --config "$work/ca/nesca.toml" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 1 100); do
    grep -q "listening on" "$work/serve.out" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$work/serve.out" || { say "nesca serve did not start: $(cat "$work/serve.err")"; exit 1; }

# The RFC 5019 GET form of a request without nonce (URL-safe base64: no '/' in file names).
openssl ocsp -issuer "$work/ca/issuing-ca.pem" -cert "$work/leaf.pem" -no_nonce \
    -reqout "$work/req.der" >/dev/null 2>&1
b64="$(base64 -w0 "$work/req.der" | tr '+/' '-_')"
nesca_url="http://127.0.0.1:$nesca_port/ocsp/$b64"
curl -sf -o "$work/resp.der" "$nesca_url"
openssl ocsp -respin "$work/resp.der" -issuer "$work/ca/issuing-ca.pem" -cert "$work/leaf.pem" \
    -CAfile "$work/ca/ca-chain.pem" 2>&1 | grep -q ": good" || { say "nesca's response is not good"; exit 1; }
# Let the refresher settle: the first GET may have been answered before pre-production.
sleep 1

# --- nginx: the same bytes as a static file -------------------------------------------------
nginx_port="$(free_port)"
mkdir -p "$work/nginx/www/ocsp" "$work/nginx/tmp"
cp "$work/resp.der" "$work/nginx/www/ocsp/$b64"
# nginx workers drop root for an unprivileged user: let them read the file.
chmod 755 "$work" "$work/nginx" "$work/nginx/www" "$work/nginx/www/ocsp"
chmod 644 "$work/nginx/www/ocsp/$b64"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    open_file_cache max=100;
    types { }
    default_type application/ocsp-response;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/nginx/www;
    }
}
CONF
"$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
nginx_url="http://127.0.0.1:$nginx_port/ocsp/$b64"
for _ in $(seq 1 50); do curl -sf -o /dev/null "$nginx_url" && break; sleep 0.1; done
cmp -s <(curl -sf "$nginx_url") "$work/resp.der" || { say "nginx does not serve the response bytes"; exit 1; }

# --- openssl ocsp: a software CA answering for the same kind of request ----------------------
o="$work/openssl"
mkdir -p "$o"
openssl req -x509 "${okey[@]}" -nodes -keyout "$o/ca.key" \
    -out "$o/ca.pem" -subj "/CN=openssl bench CA" -days 30 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$o/leaf.key" \
    -out "$o/leaf.csr" -subj "/CN=leaf" 2>/dev/null
openssl x509 -req -in "$o/leaf.csr" -CA "$o/ca.pem" -CAkey "$o/ca.key" -set_serial 0x1234 \
    -days 30 -out "$o/leaf.pem" 2>/dev/null
printf 'V\t%s\t\t1234\tunknown\t/CN=leaf\n' "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" >"$o/index.txt"
openssl_port="$(free_port)"
# OpenSSL 3.0's responder takes a port number only (it binds every interface); it runs for the
# few seconds of the measurement and answers only this throwaway CA. `-multi 2`: one process
# per core, like nesca; a single process also stalls for good on the connection wrk opens to
# check the address before the test (it accepts that one first and waits for its request).
openssl ocsp -index "$o/index.txt" -port "$openssl_port" -rsigner "$o/ca.pem" \
    -rkey "$o/ca.key" -CA "$o/ca.pem" -nmin 60 -multi 2 >/dev/null 2>"$o/responder.err" &
pids+=($!)
openssl ocsp -issuer "$o/ca.pem" -cert "$o/leaf.pem" -no_nonce -reqout "$o/req.der" >/dev/null 2>&1
ob64="$(base64 -w0 "$o/req.der" | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')"
openssl_url="http://127.0.0.1:$openssl_port/$ob64"
for _ in $(seq 1 50); do curl -sf -o /dev/null "$openssl_url" && break; sleep 0.1; done
curl -sf -o "$o/resp.der" "$openssl_url" || { say "openssl ocsp does not answer GET"; exit 1; }

# --- measure -------------------------------------------------------------------------------
run_wrk() { # name url -> "rps p50 p99"
    local out
    out="$(wrk -t2 -c"$conns" -d"${seconds}s" --latency "$2")"
    echo "$out" >"$work/wrk-$1.txt"
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    local errors
    errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)"
    echo "$rps $p50 $p99 $errors"
}

say "$alg keys; wrk -t2 -c$conns -d${seconds}s on one machine with 2 cores (client and server share them)"
read -r n_rps n_p50 n_p99 n_err < <(run_wrk nesca "$nesca_url")
read -r x_rps x_p50 x_p99 x_err < <(run_wrk nginx "$nginx_url")
read -r o_rps o_p50 o_p99 o_err < <(run_wrk openssl "$openssl_url")

printf '%-34s %12s %10s %10s  %s\n' "server" "requests/s" "p50" "p99" "errors"
printf '%-34s %12s %10s %10s  %s\n' "nesca serve (pre-produced)" "$n_rps" "$n_p50" "$n_p99" "$n_err"
printf '%-34s %12s %10s %10s  %s\n' "nginx, same bytes as static file" "$x_rps" "$x_p50" "$x_p99" "$x_err"
printf '%-34s %12s %10s %10s  %s\n' "openssl ocsp -index -port -multi 2" "$o_rps" "$o_p50" "$o_p99" "$o_err"
awk -v n="$n_rps" -v x="$x_rps" -v o="$o_rps" 'BEGIN {
    printf "nesca / nginx = %.2fx (target >= 0.8)   nesca / openssl = %.0fx (target >= 50)\n", n / x, n / o }'
