#!/usr/bin/env bash
# Makes a throwaway certificate authority in DIR and signs with it a server certificate for
# 127.0.0.1 and localhost (DIR/server.crt, server.key) and a client certificate
# (DIR/client.crt, client.key, CN=mercator-test-client), for the test servers that speak
# TLS. Prints nothing; fails when openssl is missing.
#   scripts/test_ca.sh DIR "NAME OF THE CA"
set -euo pipefail
dir=$1
name=$2
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=$name" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
sign() { # sign CN EXTENSIONS OUT
  openssl req "${ec[@]}" -subj "/CN=$1" -keyout "$dir/$3.key" -out "$dir/$3.csr" >/dev/null 2>&1
  printf '%s\nbasicConstraints=CA:FALSE\n' "$2" >"$dir/$3.ext"
  openssl x509 -req -in "$dir/$3.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/$3.ext" -out "$dir/$3.crt" >/dev/null 2>&1
  chmod 600 "$dir/$3.key"
}
sign 127.0.0.1 $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth' server
sign mercator-test-client 'extendedKeyUsage=clientAuth' client
