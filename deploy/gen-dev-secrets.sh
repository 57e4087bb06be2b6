#!/usr/bin/env bash
# Makes the keys and certificates compose.yaml mounts from deploy/secrets/:
# a deployment CA, one certificate per service (common name = the service name,
# which identity.internal_services trusts), identity's master key, audit's
# checkpoint signing key and the broker's master key. For trying Schakel out on
# one machine only: in production the CA key lives offline or in your PKI,
# never next to the services.
#
#   deploy/gen-dev-secrets.sh [DIR]      (default: deploy/secrets)
#
# Refuses to overwrite an existing DIR. Needs openssl.
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
if [ -e "$dir" ]; then
  echo "error: $dir exists; remove it first to make new secrets" >&2
  exit 1
fi
umask 077
mkdir -p "$dir"
cd "$dir"

# The deployment CA (10 years here; choose your own lifetime).
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout ca.key -out ca.pem -days 3650 -subj "/CN=Schakel development CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# One certificate per service: it is the server certificate and, towards the
# other services, the client certificate (hence serverAuth and clientAuth).
# The names: the compose service name, localhost for the CLI on this machine.
for svc in identity audit legal-basis policy broker; do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$svc.key" -out "$svc.csr" -subj "/CN=$svc" 2>/dev/null
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:$svc,DNS:localhost,IP:127.0.0.1" > "$svc.ext"
  openssl x509 -req -in "$svc.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$svc.pem" -days 825 -extfile "$svc.ext" 2>/dev/null
  rm "$svc.csr" "$svc.ext"
done
# A client certificate for the CLI on this machine: every port requires one.
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout cli.key -out cli.csr -subj "/CN=schakel-cli" 2>/dev/null
printf '%s\n' \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=clientAuth" > cli.ext
openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out cli.pem -days 825 -extfile cli.ext 2>/dev/null
rm cli.csr cli.ext
rm -f ca.srl

openssl rand -base64 32 > master.key          # identity: encrypts signing keys at rest
openssl rand -base64 32 > audit-signing.key   # audit: Ed25519 seed that signs checkpoints
openssl rand -base64 32 > broker-master.key   # broker: wraps the per-dossier data keys

# The containers run as uid 10001 and read these files through bind mounts:
# the files are world-readable, the directory is not (0700), so on this
# machine only you (and the container runtime) reach them.
chmod 0700 .
chmod 0644 ./*.pem ./*.key
chmod 0600 ca.key
echo "wrote $(pwd): ca.pem, <service>.pem/.key for identity audit legal-basis policy broker, cli.pem/.key, master.key, audit-signing.key, broker-master.key"
