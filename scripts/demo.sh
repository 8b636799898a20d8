#!/usr/bin/env bash
# nesca's demo (README): a demo CA on SoftHSM in DIR (default: demo/ at the repository root),
# and a sample NES certificate for AYŞE YILMAZ (T.C. Kimlik No 10000000146) issued from it.
#
#   scripts/demo.sh [DIR]
#
# Running it again reuses DIR's CA and issues a fresh sample certificate.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# DIR is relative to the directory the script is called from; resolve it before moving.
dir="${1:-$repo/demo}"
case "$dir" in
    /*) ;;
    *) dir="$PWD/$dir" ;;
esac
cd "$repo"

softhsm_module=/usr/lib/softhsm/libsofthsm2.so
say() { printf 'demo.sh: %s\n' "$*" >&2; }

# --- prerequisites ---------------------------------------------------------------------------
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
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is not on PATH: install Rust (https://rustup.rs), then run this script again"
    exit 1
fi

# --- build -----------------------------------------------------------------------------------
cargo build --release --bin nesca
nesca="$repo/target/release/nesca"

# --- the demo CA -----------------------------------------------------------------------------
config="$dir/nesca.toml"
if [ -f "$config" ]; then
    say "$config already exists: reusing that CA (delete $dir to start afresh)"
else
    "$nesca" init --demo --dir "$dir"
fi

# --- a sample certificate --------------------------------------------------------------------
key="$dir/sample-ayse.key"
csr="$dir/sample-ayse.csr"
cert="$dir/sample-ayse.pem"
# nesca takes the subject from its flags; the CSR only proves possession of the key.
if ! err="$( (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$key" -subj "/CN=sample" -out "$csr") 2>&1)"; then
    say "openssl req failed: $err"
    exit 1
fi
# The holder's security word (the portal's sign-in, with an SMS code to the mobile number):
# a demo word, kept in a file of the owner's alone and printed below for a person to try.
word_file="$dir/sample-ayse.security-word"
if [ ! -f "$word_file" ]; then
    (umask 077 && printf 'demo%s\n' "$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')" >"$word_file")
fi
security_word="$(head -1 "$word_file")"
serial="$("$nesca" issue --config "$config" --csr "$csr" \
    --tckn 10000000146 --given-name "AYŞE" --surname "YILMAZ" --out "$cert" \
    --security-word-file "$word_file" --mobile 05321234567 --email ayse.yilmaz@example.com)"
openssl verify -CAfile "$dir/root-ca.pem" -untrusted "$dir/issuing-ca.pem" "$cert"

# --- a named operator for the admin API -------------------------------------------------------
# The first security officer, from their own key and request (the key never touches nesca).
op_key="$dir/operator-security.key"
op_csr="$dir/operator-security.csr"
op_cert="$dir/operator-security.pem"
if [ ! -f "$op_cert" ]; then
    if ! err="$( (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$op_key" -subj "/CN=operator" -out "$op_csr") 2>&1)"; then
        say "openssl req failed: $err"
        exit 1
    fi
    "$nesca" operator add --config "$config" --name "Demo Security Officer" \
        --role security-officer --csr "$op_csr" --out "$op_cert" >/dev/null
fi
admin_listen="$(sed -n '/^\[admin\]/,/^\[/s/^listen = "\(.*\)"/\1/p' "$config")"
portal_listen="$(sed -n '/^\[portal\]/,/^\[/s/^listen = "\(.*\)"/\1/p' "$config")"

# --- revocation status: nesca serve, asked by OpenSSL as a relying party ---------------------
# Started for the check and stopped again (SIGTERM); `nesca serve` runs it for real.
listen="$(sed -n '/^\[server\]/,/^\[/s/^listen = "\(.*\)"/\1/p' "$config")"
serve_log="$dir/serve.log"
"$nesca" serve --config "$config" >"$serve_log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$serve_log" 2>/dev/null && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
done
if grep -q "listening on" "$serve_log"; then
    openssl ocsp -issuer "$dir/issuing-ca.pem" -cert "$cert" -url "http://$listen/ocsp" \
        -CAfile "$dir/ca-chain.pem" 2>&1 | grep -E "verify|: (good|revoked|unknown)"
    crl_file="$dir/crl/nes-ca.crl"
    openssl crl -inform DER -in "$crl_file" -noout -issuer -lastupdate -nextupdate
    if [ -n "$admin_listen" ]; then
        # The admin API over mutual TLS: the listener verified against the CA chain.
        curl -sS --max-time 10 --cacert "$dir/ca-chain.pem" --cert "$op_cert" --key "$op_key" \
            "https://$admin_listen/admin/v1/health" && echo
    fi
    if [ -n "$portal_listen" ]; then
        # The portal's home page over TLS, verified against the CA chain.
        curl -sS --max-time 10 --cacert "$dir/ca-chain.pem" "https://$portal_listen/" |
            grep -o 'Sertifika İşlemleri\|Başvuru' | sort -u | tr '\n' ' ' && echo
    fi
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
else
    kill "$serve_pid" 2>/dev/null || true
    say "nesca serve did not start on $listen (is the port taken?): $(tail -1 "$serve_log")"
fi

q() { printf '%q' "$1"; }
cat <<INFO

nesca demo ready.
  config          $config
  database        $dir/nesca.db
  SoftHSM tokens  $dir/tokens (PIN in $dir/user-pin, mode 0600)
  CA chain        $dir/ca-chain.pem (issuing CA, then root)
  root CA         $dir/root-ca.pem
  OCSP signer     $dir/ocsp-signer.pem
  sample cert     $cert (key $key)
  sample serial   $serial
  operator        $op_cert (key $op_key): the security officer "Demo Security Officer"
  admin API       https://$admin_listen/admin/v1/ (docs/admin.md)
  portal          https://$portal_listen/ (docs/portal.md; the CA chain above verifies it)
  sample holder   T.C. Kimlik No 10000000146, security word $security_word; the SMS code
                  arrives as a file in $dir/outbox/sms/ while nesca serve runs

Try:
  $(q "$nesca") serve --config $(q "$config")      # OCSP, CRLs, CA certificates on http://$listen
  # then open https://$portal_listen/ (a browser warns: it does not know the demo's root, $(q "$dir/root-ca.pem"))
  openssl ocsp -issuer $(q "$dir/issuing-ca.pem") -cert $(q "$cert") -url http://$listen/ocsp -CAfile $(q "$dir/ca-chain.pem")
  $(q "$nesca") suspend --config $(q "$config") --serial $serial --holder-tckn 10000000146
  $(q "$nesca") crl --config $(q "$config") --delta --out delta.crl
  $(q "$nesca") cert show --config $(q "$config") --serial $serial
  $(q "$nesca") cert list --config $(q "$config")
  curl --cacert $(q "$dir/ca-chain.pem") --cert $(q "$op_cert") --key $(q "$op_key") https://$admin_listen/admin/v1/operators
  openssl x509 -in $(q "$cert") -noout -text -nameopt utf8
INFO
