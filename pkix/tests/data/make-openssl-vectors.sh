#!/bin/sh
# Regenerates the OpenSSL interop vectors read by ../openssl_interop.rs. Run once by hand
# (the tests never run openssl); the private keys are thrown away, only certificates and
# signatures are kept. Also writes test-rsa2048-key.der, the RSA key of the unit tests.
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/ext.cnf" <<'CNF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

# Root CA (P-256), 20 years.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/root.key"
openssl req -new -x509 -key "$work/root.key" -sha256 -days 7300 -set_serial 0x01 \
  -subj "/C=TR/O=nesca interop test/CN=nesca OpenSSL Test Root" \
  -extensions root -config "$work/ext.cnf" -out "$work/root.pem"

leaf() { # name keyfile
  openssl req -new -key "$2" -utf8 \
    -subj "/C=TR/serialNumber=10000000146/GN=Ayşe/SN=Yılmaz/CN=AYŞE YILMAZ" -out "$work/$1.csr"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/root.pem" -CAkey "$work/root.key" \
    -sha256 -days 3650 -set_serial "$3" -extfile "$work/ext.cnf" -extensions leaf \
    -out "$work/$1.pem"
}
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ec.key"
leaf ec-leaf "$work/ec.key" 0x00ec1eaf
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.key"
leaf rsa-leaf "$work/rsa.key" 0x0a5a1eaf

printf 'Bu başvurudaki bilgilerin doğru olduğunu ve nitelikli elektronik sertifikamı kabul ettiğimi taahhüt ederim.' > openssl-content.txt

sign() { # out cert key extra-args...
  out=$1 cert=$2 key=$3; shift 3
  openssl cms -sign -binary -in openssl-content.txt -signer "$work/$cert.pem" -inkey "$key" \
    -certfile "$work/root.pem" -outform DER -out "$out" "$@"
}
sign openssl-ec-sha256-attached.p7s ec-leaf "$work/ec.key" -nodetach -md sha256
sign openssl-ec-sha512-attached.p7s ec-leaf "$work/ec.key" -nodetach -md sha512
sign openssl-rsa-sha256-detached.p7s rsa-leaf "$work/rsa.key" -md sha256
sign openssl-rsa-pss-sha256-detached.p7s rsa-leaf "$work/rsa.key" -md sha256 \
  -keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:-1

for c in root ec-leaf rsa-leaf; do
  openssl x509 -in "$work/$c.pem" -outform DER -out "openssl-$c.der"
done

# The unit tests' RSA key (PKCS#8 DER): generating RSA keys in debug test builds is slow.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  | openssl pkcs8 -topk8 -nocrypt -outform DER -out test-rsa2048-key.der

# Sanity: OpenSSL verifies its own output.
openssl cms -verify -binary -inform DER -in openssl-ec-sha256-attached.p7s -CAfile "$work/root.pem" -purpose any >/dev/null
openssl cms -verify -binary -inform DER -in openssl-rsa-sha256-detached.p7s -content openssl-content.txt -CAfile "$work/root.pem" -purpose any >/dev/null
date -u +%s > generated-at.txt
