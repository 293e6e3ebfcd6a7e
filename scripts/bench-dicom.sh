#!/usr/bin/env bash
# DICOM receive benchmark, side by side in one run: the same sender
# (`medbus-sim dicom send`, the same seed: the same instances, bytes and UIDs)
# stores the same CT-like instances over the same number of associations into
#   1. dcmtk storescp (--fork, one process per association, writing files),
#   2. Orthanc (the Debian package, its SQLite index and file storage),
#   3. medbus (file written and fsynced, metadata kept on the backbone, before
#      each success), on the embedded default or on a private nats-server and
#      a fresh PostgreSQL database.
#
#   scripts/bench-dicom.sh [embedded|jetstream] [INSTANCES] [ASSOCIATIONS] [PIXEL_BYTES]
#   defaults: jetstream 1000 4 524288 (512 KiB of pixel data per instance)
#
# Orthanc listens on every interface and this machine may expose loopback
# only, so the whole run happens in a private network namespace of its own
# (it re-runs itself under `unshare --net`; needs root). PostgreSQL is reached
# there through its Unix socket (PGSOCKET, default /var/run/postgresql).
# dcmtk and Orthanc get TCP_NODELAY=1: without it each C-STORE waits ~40 ms
# for Nagle (see ../shared/PEERS.md in the project notes).
# Needs: cargo, dcmtk (storescp), orthanc (Orthanc), curl; for jetstream,
# nats-server and a local PostgreSQL with createdb rights over its socket.
set -euo pipefail

mode=${1:-jetstream}
count=${2:-1000}
assocs=${3:-4}
pixel=${4:-524288}

if [[ -z "${BENCH_DICOM_IN_NETNS:-}" ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "bench-dicom.sh needs root to make a private network namespace (Orthanc binds every interface)" >&2
        exit 1
    fi
    for tool in storescp Orthanc unshare curl; do
        command -v "$tool" >/dev/null || { echo "bench-dicom.sh: $tool not found (apt-get install -y dcmtk orthanc)" >&2; exit 1; }
    done
    # Build before entering the namespace (crate downloads need the network);
    # BENCH_BIN (see bench-lib.sh) takes binaries built elsewhere instead.
    if [[ -z "${BENCH_BIN:-}" ]]; then
        (cd "$(dirname "$0")/.." && cargo build --release -q -p medbus -p medbus-simulators)
    fi
    exec unshare --net env BENCH_DICOM_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

pg_socket=${PGSOCKET:-/var/run/postgresql}
# bench_setup creates the database through PGHOST: the socket directory here.
PGHOST=$pg_socket
source "$(dirname "$0")/bench-lib.sh"
bench_setup "$mode" "usage: $0 [embedded|jetstream] [INSTANCES] [ASSOCIATIONS] [PIXEL_BYTES]"
if [[ $mode == jetstream ]]; then
    # The store over the Unix socket (no TCP to the root namespace from here).
    env+=(MEDBUS_STORE_URL="postgres://${PGUSER:-postgres}@localhost/$db?host=$pg_socket")
fi

send() { # send PORT CALLED_AE LABEL: the same instances every time (sender CPU in LABEL.sender-cpu)
    /usr/bin/time -f "%U %S" -o "$work/$3.sender-cpu" "$bin/medbus-sim" dicom send --addr "127.0.0.1:$1" --called-ae "$2" --associations "$assocs" \
        --instances "$count" --patients 4 --series-per-study 2 --pixel-bytes "$pixel" --seed 42 \
        --json >"$work/$3.json"
}

wait_port() { # wait until something accepts on 127.0.0.1:PORT
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    exit 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# 1. dcmtk storescp, one process per association.
port=$(free_port)
mkdir -p "$work/storescp"
# Under time(1): its forked children's CPU is counted once they are reaped.
TCP_NODELAY=1 /usr/bin/time -f "%U %S" -o "$work/storescp.cpu" \
    storescp --fork -aet STORESCP -od "$work/storescp" "$port" >"$work/storescp.log" 2>&1 &
timer=$!
pids+=($timer)
wait_port "$port"
send "$port" STORESCP storescp
sleep 0.5 # the last association's child exits and is reaped
stop "$(pgrep -P "$timer" -x storescp)"
wait "$timer" 2>/dev/null || true
stored_storescp=$(find "$work/storescp" -type f | wc -l)

# 2. Orthanc with its defaults for storage (SQLite index, files on disk).
dport=$(free_port)
hport=$(free_port)
mkdir -p "$work/orthanc"
cat >"$work/orthanc.json" <<EOF
{
  "Name": "bench", "StorageDirectory": "$work/orthanc/storage", "IndexDirectory": "$work/orthanc/index",
  "DicomAet": "ORTHANC", "DicomPort": $dport, "HttpPort": $hport, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "DicomCheckCalledAet": false, "UnknownSopClassAccepted": true,
  "DicomAlwaysAllowStore": true, "TcpNoDelay": true, "Plugins": [], "DicomThreadsCount": $assocs,
  "StableAge": 3600, "HttpThreadsCount": 4
}
EOF
TCP_NODELAY=1 Orthanc "$work/orthanc.json" >"$work/orthanc.log" 2>&1 &
orthanc=$!
pids+=($orthanc)
wait_port "$dport"
ocpu0=$(cpu_of Orthanc)
send "$dport" ORTHANC orthanc
ocpu1=$(cpu_of Orthanc)
stored_orthanc=$(curl -sf "http://127.0.0.1:$hport/statistics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])')
stop "$orthanc"

# 3. medbus: one DICOM channel, nothing else taking traffic.
mport=$(free_port)
printf '[dicom.bench]\nlisten = "127.0.0.1:%s"\nae_title = "MEDBUS"\n' "$mport" >"$work/medbus.toml"
start_medbus
others() { echo "$(cpu_of nats-server) + $(cpu_of postgres)" | bc; }
cpu0=$(cpu_of medbus)
ncpu0=$(others)
send "$mport" MEDBUS medbus
cpu1=$(cpu_of medbus)
ncpu1=$(others)
stored_medbus=$(find "$work/data/dicom/bench" -type f -name '*.dcm' | wc -l)

echo "DICOM C-STORE: $count instances, $pixel bytes of pixel data each, $assocs associations, one sender ($mode medbus)"
printf '%-10s %8s %10s %8s %9s %9s %9s\n' receiver stored instances/s MB/s p50_ms p99_ms max_ms
for r in storescp orthanc medbus; do
    python3 - "$work/$r.json" "$r" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
l = d.get("latency", {})
def ms(k):
    v = l.get(k)
    return f"{v:9.1f}" if isinstance(v, (int, float)) else f"{'-':>9}"
print(f"{sys.argv[2]:<10} {d['succeeded']:>8} {d['instances_per_s']:>11.1f} {d['mb_per_s']:>8.1f} {ms('p50_ms')} {ms('p99_ms')} {ms('max_ms')}")
EOF
done
echo "files/instances kept: storescp $stored_storescp, Orthanc $stored_orthanc, medbus $stored_medbus"
# CPU per instance: the receiver (for medbus also nats-server and PostgreSQL,
# which count every process of those names on the machine) and the sender.
sender() { awk '{print $1 + $2}' "$work/$1.sender-cpu"; }
per() { echo "scale=3; 1000 * ($1) / $count" | bc; }
scp_cpu=$(awk 'NF == 2 {print $1 + $2}' "$work/storescp.cpu" | tail -1)
echo "CPU ms per instance (receiver / sender):" \
    "storescp $(per "${scp_cpu:-0}") / $(per "$(sender storescp)")," \
    "Orthanc $(per "$ocpu1 - $ocpu0") / $(per "$(sender orthanc)")," \
    "medbus $(per "$cpu1 - $cpu0") + nats-server and postgres $(per "$ncpu1 - $ncpu0") / $(per "$(sender medbus)")"
