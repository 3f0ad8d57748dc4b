#!/usr/bin/env bash
# Prepare what deploy/mosquitto/mosquitto.conf needs, in DIR (docs/broker.md#bootstrap):
#
#   DIR/certs/ca.crt ca.key          a private CA (10 years); keep ca.key offline once done
#   DIR/certs/server.crt server.key  the broker's certificate (825 days), SAN = HOSTNAME, localhost, 127.0.0.1
#   DIR/data/dynamic-security.json   the dynamic security plugin's file with one admin login
#
# Usage: scripts/broker-bootstrap.sh DIR [HOSTNAME]
#   HOSTNAME                        the name devices connect to (default: this host's FQDN)
#   CITYHUB_BROKER_ADMIN_USER       admin username (default: cityhub-admin)
#   CITYHUB_BROKER_ADMIN_PASSWORD   admin password (at least 16 characters); when unset, one is
#                                   generated and printed once. There is no default password.
#   CITYHUB_BROKER_UID              chown DIR/data to this uid when run as root (1883 in the
#                                   eclipse-mosquitto image)
#
# Nothing is overwritten: the script stops if any of the files exists. Private keys and the
# plugin's file are created with mode 0600, their directories 0700.
set -euo pipefail
umask 077

die() { echo "broker-bootstrap: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 DIR [HOSTNAME]"
dir=$1
host=${2:-$(hostname -f 2>/dev/null || hostname)}
[[ $host =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$ ]] || die "invalid hostname '$host'"
admin_user=${CITYHUB_BROKER_ADMIN_USER:-cityhub-admin}
[[ $admin_user =~ ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$ ]] || die "invalid admin username '$admin_user'"
command -v openssl >/dev/null || die "openssl is required"
command -v python3 >/dev/null || die "python3 is required (to hash the admin password)"

certs=$dir/certs
data=$dir/data
for f in "$certs/ca.key" "$certs/ca.crt" "$certs/server.key" "$certs/server.crt" "$data/dynamic-security.json"; do
    [[ ! -e $f ]] || die "$f exists already; refusing to overwrite it"
done
[[ -d $dir ]] || { mkdir -p "$dir" && chmod 0755 "$dir"; }  # the broker's user must traverse it
mkdir -p "$certs" "$data"
chmod 0700 "$certs" "$data"

generated=0
if [[ -n ${CITYHUB_BROKER_ADMIN_PASSWORD:-} ]]; then
    admin_password=$CITYHUB_BROKER_ADMIN_PASSWORD
    (( ${#admin_password} >= 16 )) || die "CITYHUB_BROKER_ADMIN_PASSWORD must have at least 16 characters"
else
    admin_password=$(openssl rand -base64 30 | tr -d '/+=\n')
    generated=1
fi

# -- certificates (ECDSA P-256: small, fast, supported by every TLS 1.2 client) -------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$certs/ca.key"
openssl req -x509 -new -key "$certs/ca.key" -sha256 -days 3650 -subj "/CN=cityhub broker CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$certs/ca.crt" 2>/dev/null

openssl ecparam -name prime256v1 -genkey -noout -out "$certs/server.key"
ext=$(mktemp)
trap 'rm -f "$ext" "$certs/server.csr"' EXIT
cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1
EOF
openssl req -new -key "$certs/server.key" -subj "/CN=$host" -out "$certs/server.csr" 2>/dev/null
# 825 days: the longest validity Apple's TLS clients accept for a server certificate.
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$ext" -out "$certs/server.crt" 2>/dev/null
rm -f "$certs/ca.srl"
chmod 0600 "$certs/ca.key" "$certs/server.key"
chmod 0644 "$certs/ca.crt" "$certs/server.crt"
# The broker reads the certificate directory; ca.crt is public and goes to every device.
chmod 0755 "$certs"

# -- the dynamic security plugin's file --------------------------------------------------------------
# Written as `mosquitto_ctrl dynsec init FILE USER PASSWORD` writes it (mosquitto 2.0), without putting
# the password on a command line (where `ps` would show it): PBKDF2-HMAC-SHA512 over a 12-byte salt.
CITYHUB_ADMIN_USER=$admin_user CITYHUB_ADMIN_PASSWORD=$admin_password python3 - "$data/dynamic-security.json" <<'EOF'
import base64, hashlib, json, os, secrets, sys

user, password = os.environ["CITYHUB_ADMIN_USER"], os.environ["CITYHUB_ADMIN_PASSWORD"]
salt = secrets.token_bytes(12)
iterations = 101  # what the plugin itself uses for passwords it sets (PW_DEFAULT_ITERATIONS)
digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
acls = [
    ("publishClientSend", "$CONTROL/dynamic-security/#"),
    ("publishClientReceive", "$CONTROL/dynamic-security/#"),
    ("subscribePattern", "$CONTROL/dynamic-security/#"),
    ("publishClientReceive", "$SYS/#"),
    ("subscribePattern", "$SYS/#"),
    ("publishClientReceive", "#"),
    ("subscribePattern", "#"),
    ("unsubscribePattern", "#"),
]
config = {
    "clients": [{
        "username": user, "textName": "cityhub broker admin",
        "password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
        "iterations": iterations, "roles": [{"rolename": "admin"}],
    }],
    "roles": [{"rolename": "admin", "acls": [{"acltype": t, "topic": f, "allow": True} for t, f in acls]}],
    # Deny by default; the hub's setup_defaults() sets the same (and denies publishClientReceive too).
    "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True},
}
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as out:
    json.dump(config, out, indent=1)
EOF

if [[ $(id -u) == 0 && -n ${CITYHUB_BROKER_UID:-} ]]; then
    chown -R "$CITYHUB_BROKER_UID" "$data"
    chown "$CITYHUB_BROKER_UID" "$certs/server.key"
fi

echo "broker-bootstrap: CA, server certificate for '$host' and dynamic security file written to $dir"
echo "broker-bootstrap: admin username: $admin_user"
if (( generated )); then
    # Shown once, here only: store it in the hub's secret store now (CITYHUB_BROKER_ADMIN_PASSWORD).
    echo "broker-bootstrap: admin password (shown once): $admin_password"
fi
echo "broker-bootstrap: next: mount $certs at /mosquitto/config/certs and $data at /mosquitto/data;"
echo "broker-bootstrap: keep $certs/ca.key offline; give devices $certs/ca.crt."
