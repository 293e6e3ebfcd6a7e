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
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q -p medbus -p medbus-simulators
bin=$root/target/release

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n "${db:-}" ]]; then dropdb -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" --if-exists "$db" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port)

env=(MEDBUS_DATA_DIR="$work/data" MEDBUS_HTTP_ADDR="127.0.0.1:$http" MEDBUS_LOG_LEVEL=warn)
if [[ $mode == jetstream ]]; then
    nats=$(free_port)
    nats-server -a 127.0.0.1 -p "$nats" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
    pids+=($!)
    db="medbus_bench_$$"
    createdb -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" "$db"
    env+=(MEDBUS_BACKBONE_URL="nats://127.0.0.1:$nats"
        MEDBUS_STORE_URL="postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/$db?sslmode=${PGSSLMODE:-disable}")
    sleep 0.5
elif [[ $mode != embedded ]]; then
    echo "usage: $0 embedded|jetstream [CLIENTS] [COUNT]" >&2
    exit 2
fi
# No MLLP channel: only the FHIR server takes traffic.
: >"$work/medbus.toml"
env "${env[@]}" MEDBUS_CONFIG="$work/medbus.toml" "$bin/medbus" serve >"$work/medbus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$http/readyz" >/dev/null || { cat "$work/medbus.log" >&2; echo "medbus did not become ready" >&2; exit 1; }

metric() { # sum of a counter's samples matching a label filter
    curl -sf "http://127.0.0.1:$http/metrics" | awk -v m="$1" -v f="$2" '$1 ~ "^"m"\\{" && $1 ~ f {s+=$2} END {print s+0}'
}
cpu_of() { # CPU seconds (user + system) used so far by processes named $1
    local tck total=0 pid
    tck=$(getconf CLK_TCK)
    for pid in $(pgrep -x "$1" || true); do
        [[ -r /proc/$pid/stat ]] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "scale=2; $total / $tck" | bc
}

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
