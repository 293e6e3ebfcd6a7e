#!/usr/bin/env bash
# The whole test suite, on real servers. Works on a fresh Debian machine:
# - nats-server (with JetStream): the suites start private servers from the
#   binary; it is installed with apt-get when absent.
# - PostgreSQL: uses the one on $MEDBUS_TEST_POSTGRES_URL (default
#   postgres://postgres@127.0.0.1:5432/postgres); when none answers, starts a
#   private cluster under target/test-pg, installing PostgreSQL when absent.
# - DCMTK (echoscu, storescu, storescp): installed with apt-get when absent;
#   its directory is passed on as MEDBUS_TEST_DCMTK_BIN.
# - Orthanc (the PACS the DICOM forwarder delivers to): installed with apt-get
#   when absent. It and storescp bind every interface, so the tests run them
#   in a private network namespace (`unshare --net`): that needs root.
# Fails loudly when a server cannot be had: MEDBUS_REQUIRE_SERVICES=1 makes
# every server suite panic instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

sudo_if() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get): install it and re-run"
  say "installing $*"
  sudo_if apt-get update -qq >/dev/null 2>&1 || true
  sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

# --- NATS -----------------------------------------------------------------
if [ -z "${MEDBUS_NATS_SERVER:-}" ]; then
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    apt_install nats-server
  fi
  MEDBUS_NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
fi
[ -x "$MEDBUS_NATS_SERVER" ] || die "nats-server not runnable at $MEDBUS_NATS_SERVER"
export MEDBUS_NATS_SERVER
say "nats-server: $("$MEDBUS_NATS_SERVER" --version 2>&1 | head -1)"

# --- PostgreSQL -----------------------------------------------------------
pg_url=${MEDBUS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_answers() { command -v psql >/dev/null && psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
if ! pg_answers "$pg_url"; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    apt_install postgresql
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  dir=$PWD/target/test-pg
  port=${MEDBUS_TEST_PG_PORT:-55432}
  run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if [ ! -f "$dir/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    run_pg "$pg_bin/initdb" -D "$dir" -U postgres --auth=trust >/dev/null || die "initdb failed"
  fi
  say "starting PostgreSQL on 127.0.0.1:$port"
  run_pg "$pg_bin/pg_ctl" -D "$dir" -l "$dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=/tmp -c fsync=off" start >/dev/null \
    || { tail -20 "$dir/log" >&2; die "PostgreSQL did not start"; }
  pg_url="postgres://postgres@127.0.0.1:$port/postgres"
  pg_answers "$pg_url" || die "PostgreSQL started but does not answer at $pg_url"
fi
export MEDBUS_TEST_POSTGRES_URL=$pg_url
say "postgres: $pg_url"

# --- HL7 peers nobody here wrote (PyPI "hl7": an MLLP server and mllp_send) --
if ! python3 -c 'import hl7' >/dev/null 2>&1; then
  command -v python3 >/dev/null || apt_install python3 python3-pip
  say "installing the PyPI package hl7"
  python3 -m pip install -q hl7 2>/dev/null || python3 -m pip install -q --break-system-packages hl7 \
    || die "pip install hl7 failed"
fi
say "python hl7: $(python3 -c 'import importlib.metadata as m; print(m.version("hl7"))')"

# --- an SMTP server nobody here wrote (PyPI "aiosmtpd", for notification e-mail) --
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  say "installing the PyPI package aiosmtpd"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd \
    || die "pip install aiosmtpd failed"
fi
say "python aiosmtpd: $(python3 -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))')"

# --- an R4 validator nobody here wrote (PyPI "fhir.resources" 6.2.2, for the FHIR output) --
# In a venv of its own: it needs pydantic v1, which would downgrade the system's pydantic.
fhir_venv=${MEDBUS_TEST_FHIR_VENV:-$HOME/.cache/medbus/fhir-venv}
if ! "$fhir_venv/bin/python" scripts/fhir_validate.py --check >/dev/null 2>&1; then
  python3 -m venv "$fhir_venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv "$fhir_venv"; } \
    || die "python3 -m venv $fhir_venv failed"
  say "installing fhir.resources 6.2.2 in $fhir_venv"
  "$fhir_venv/bin/pip" install -q "fhir.resources==6.2.2" "pydantic[email]<2" || die "pip install fhir.resources failed"
fi
export MEDBUS_TEST_FHIR_PYTHON=$fhir_venv/bin/python
say "$("$MEDBUS_TEST_FHIR_PYTHON" scripts/fhir_validate.py --check)"

# --- a TLS client nobody here wrote (openssl s_client, for MLLP over TLS) --
command -v openssl >/dev/null || apt_install openssl
say "openssl: $(openssl version)"

# --- DICOM peers nobody here wrote (DCMTK echoscu/storescu, for the storage SCP) --
if [ -z "${MEDBUS_TEST_DCMTK_BIN:-}" ]; then
  command -v storescu >/dev/null || apt_install dcmtk
  MEDBUS_TEST_DCMTK_BIN=$(dirname "$(command -v storescu)")
fi
[ -x "$MEDBUS_TEST_DCMTK_BIN/storescu" ] && [ -x "$MEDBUS_TEST_DCMTK_BIN/echoscu" ] \
  && [ -x "$MEDBUS_TEST_DCMTK_BIN/storescp" ] \
  || die "DCMTK echoscu/storescu/storescp not runnable in $MEDBUS_TEST_DCMTK_BIN"
export MEDBUS_TEST_DCMTK_BIN
say "dcmtk: $("$MEDBUS_TEST_DCMTK_BIN/storescu" --version 2>&1 | head -1)"

# --- a PACS nobody here wrote (Orthanc, for the DICOM forwarder) ------------
if [ -z "${MEDBUS_TEST_ORTHANC:-}" ]; then
  command -v Orthanc >/dev/null || apt_install orthanc
  MEDBUS_TEST_ORTHANC=$(command -v Orthanc) || die "Orthanc not found after installing the orthanc package"
fi
"$MEDBUS_TEST_ORTHANC" --version >/dev/null 2>&1 || die "Orthanc at $MEDBUS_TEST_ORTHANC does not run"
export MEDBUS_TEST_ORTHANC
say "orthanc: $("$MEDBUS_TEST_ORTHANC" --version 2>&1 | head -1)"
# storescp and Orthanc run in private network namespaces (they bind every interface).
unshare --net true 2>/dev/null \
  || die "cannot make a network namespace (unshare --net): the DICOM forwarder tests need root or CAP_SYS_ADMIN"

# --- disk -----------------------------------------------------------------
# The test build needs about 3.5 GiB under target/ (2.5 without incremental
# data); say so plainly instead of dying inside rustc with "No space left".
need_kib=$((4 * 1024 * 1024))
mkdir -p target
free_kib=$(df -Pk target | awk 'NR==2 {print $4}')
say "disk: $((free_kib / 1024)) MiB free under target/"
[ "${free_kib:-0}" -ge "$need_kib" ] || die "only $((free_kib / 1024)) MiB free under target/; the test build needs about 4 GiB"

# --- the suite ------------------------------------------------------------
export MEDBUS_REQUIRE_SERVICES=1
say "cargo test --workspace"
cargo test --workspace --all-targets "$@"
