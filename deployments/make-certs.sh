#!/usr/bin/env sh
# Makes the certificates a cluster with mutual TLS needs, with openssl, in DIR:
#   ca.pem, ca.key              the CA every side trusts (keep ca.key offline in production)
#   frontend.pem, .key          the Temporal frontend's (names: temporal, localhost, 127.0.0.1)
#   system-worker.pem, .key     the Temporal server's own system worker, a client of its frontend
#   host.pem, .key              activity-host's client certificate (also the UI's and the CLI's)
#   rogue-ca.pem, rogue.pem     a CA nobody trusts and a client it signed (refused: for tests)
# Certificates last DAYS days (default 365). Production clusters use their own PKI
# (cert-manager, Vault); this is how the compose deployment and the cluster test get theirs.
#
#   sh deployments/make-certs.sh deployments/docker/tls
set -eu
dir=${1:?usage: make-certs.sh DIR [DAYS]}
days=${2:-365}
mkdir -p "$dir"
cd "$dir"
ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
        -subj "/CN=$1 CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
leaf() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days "$days" \
        -extfile leaf.ext -out "$1.pem" 2>/dev/null
    rm -f "$1.csr"
}
ca ca
ca rogue-ca
cat > leaf.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:temporal,DNS:localhost,IP:127.0.0.1
EXT
leaf frontend ca
leaf system-worker ca
leaf host ca
leaf rogue rogue-ca
rm -f leaf.ext ./*.srl
# Readable by the containers' unprivileged users (temporal, activity-host).
chmod 0644 ./*.pem ./*.key
echo "certificates in $(pwd)"
