#!/usr/bin/env bash
# FHIR R4 inbound benchmark: the real medbus binary (release) and
# `medbus-sim fhir` on the same machine; N clients POST distinct Patients to
# /fhir/Patient. Each 201 comes after the request was kept on the backbone
# (durable ack) and the resource committed to the store.
#
#   scripts/bench-fhir.sh embedded  [CLIENTS] [COUNT]
#   scripts/bench-fhir.sh jetstream [CLIENTS] [COUNT]   # private nats-server + a fresh PostgreSQL database
#
# Prints the simulator's report (requests/s, latency percentiles), the CPU
# each process used, and how long the FHIR router and the registration
# service took to turn the same requests into events and rows (/metrics).
# The store connection is plain TCP on loopback (PGSSLMODE=prefer to measure TLS).
# Needs: cargo; for jetstream, nats-server on PATH and PostgreSQL answering on
# PGHOST/PGPORT (default 127.0.0.1:5432, user postgres) with createdb rights.
set -euo pipefail

mode=${1:-jetstream}
clients=${2:-16}
count=${3:-20000}
source "$(dirname "$0")/bench-lib.sh"
bench_setup "$mode" "usage: $0 embedded|jetstream [CLIENTS] [COUNT]"
# No MLLP channel: only the FHIR server takes traffic.
: >"$work/medbus.toml"
start_medbus

# Warm-up (connections, prepared statements), not counted.
"$bin/medbus-sim" fhir --url "http://127.0.0.1:$http/fhir" --clients "$clients" --count 500 --id-prefix "W$$-" >/dev/null
cpu_before=("$(cpu_of medbus)" "$(cpu_of nats-server)" "$(cpu_of postgres)")
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$work/sim.cpu" \
    "$bin/medbus-sim" fhir --url "http://127.0.0.1:$http/fhir" --clients "$clients" --count "$count" --id-prefix "B$$-"
done_at=$(date +%s.%N)
cpu_after=("$(cpu_of medbus)" "$(cpu_of nats-server)" "$(cpu_of postgres)")
read -r sim_user sim_sys <"$work/sim.cpu"
echo "CPU during the run (s): medbus $(echo "${cpu_after[0]} - ${cpu_before[0]}" | bc)" \
    "nats-server $(echo "${cpu_after[1]} - ${cpu_before[1]}" | bc)" \
    "postgres $(echo "${cpu_after[2]} - ${cpu_before[2]}" | bc)" \
    "simulator $(echo "$sim_user + $sim_sys" | bc)" \
    "of $(echo "($done_at - $start) * $(nproc)" | bc) available"
# The router turns each kept request into events; wait until it has them all.
total=$((count + 500))
while :; do
    routed=$(metric medbus_routed_total 'channel="fhir"')
    now=$(date +%s.%N)
    (( routed >= total )) && break
    if (( $(echo "$now - $start > 600" | bc) )); then echo "gave up after 600 s" >&2; break; fi
    sleep 0.5
done
echo "router  : $routed FHIR requests turned into events within $(echo "$now - $start" | bc) s of the first request (±0.5 s)"
cpu_routed=("$(cpu_of medbus)" "$(cpu_of nats-server)" "$(cpu_of postgres)")
echo "CPU after the run until routed (s): medbus $(echo "${cpu_routed[0]} - ${cpu_after[0]}" | bc)" \
    "nats-server $(echo "${cpu_routed[1]} - ${cpu_after[1]}" | bc)" \
    "postgres $(echo "${cpu_routed[2]} - ${cpu_after[2]}" | bc)"
