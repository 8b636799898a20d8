#!/usr/bin/env bash
# OCSP GET throughput of two nesca binaries (BEFORE and AFTER a change), alternating in one
# session, each serving its own demo CA: wrk -t2 -c64 on a pre-produced GET.
#   scripts/bench-ocsp-ab.sh BEFORE_BINARY AFTER_BINARY   (ROUNDS, SECS from the environment)
# Needs wrk, curl, openssl, python3 and SoftHSM (as scripts/bench-ocsp.sh).
set -euo pipefail
B="$1"; A="$2"
ROUNDS=${ROUNDS:-4}; SECS=${SECS:-10}
setup() { # $1 bin $2 dir $3 port
  rm -rf "$2"; "$1" init --demo --dir "$2" >/dev/null 2>&1
  sed -i "/^\[server\]/,/^\[/s/^listen = .*/listen = \"127.0.0.1:$3\"/" "$2/nesca.toml"
  (umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2/s.key" -subj /CN=s -out "$2/s.csr" 2>/dev/null)
  "$1" issue --config "$2/nesca.toml" --csr "$2/s.csr" --tckn 10000000146 --given-name AYSE --surname YILMAZ --out "$2/s.pem" >/dev/null
  openssl ocsp -issuer "$2/issuing-ca.pem" -cert "$2/s.pem" -no_nonce -reqout "$2/req.der" >/dev/null 2>&1
  python3 -c "import base64,sys,urllib.parse;print(urllib.parse.quote(base64.b64encode(open(sys.argv[1],'rb').read()).decode(),safe=''))" "$2/req.der" > "$2/req.b64"
}
run() { # $1 bin $2 dir $3 port -> req/s
  "$1" serve --config "$2/nesca.toml" >"$2/serve.log" 2>&1 & pid=$!
  for i in $(seq 1 100); do grep -q "listening on" "$2/serve.log" && break; sleep 0.1; done
  url="http://127.0.0.1:$3/ocsp/$(cat $2/req.b64)"
  curl -s -o /dev/null "$url"; curl -s -o /dev/null "$url"
  out=$(wrk -t2 -c64 -d${SECS}s "$url" 2>&1)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  echo "$out" | awk '/Requests\/sec/ {print $2}'
  echo "$out" | grep -E "Non-2xx|Socket errors" >&2 || true
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
setup $B "$work/b" 18080; setup $A "$work/a" 18081
for r in $(seq 1 $ROUNDS); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ $((r % 2)) = 1 ]; then b=$(run $B "$work/b" 18080); a=$(run $A "$work/a" 18081);
  else a=$(run $A "$work/a" 18081); b=$(run $B "$work/b" 18080); fi
  echo "round=$r load=$load before=$b after=$a ratio=$(python3 -c "print(round($a/$b,3))")"
done
