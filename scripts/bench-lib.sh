# Shared by the end-to-end benchmarks (bench-hl7.sh, bench-fhir.sh); sourced, not run.
#
# bench_setup MODE USAGE: builds the release binaries (or takes them from
# BENCH_BIN, a directory, to compare builds of two commits), makes a work dir
# (removed on exit with every process started and the database created),
# picks the HTTP port and, for MODE=jetstream, starts a private nats-server
# and creates a fresh PostgreSQL database on PGHOST/PGPORT (default
# 127.0.0.1:5432, user postgres), reached over plain TCP (PGSSLMODE to
# change). Sets: root, bin, work, http, env (the medbus environment), pids.
# start_medbus: runs `medbus serve` on $work/medbus.toml and waits for /readyz.

bench_setup() {
    local mode=$1 usage=$2
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cd "$root"
    if [[ -n "${BENCH_BIN:-}" ]]; then
        # Binaries built elsewhere (another commit, for an A/B run).
        bin=$BENCH_BIN
    else
        cargo build --release -q -p medbus -p medbus-simulators
        bin=$root/target/release
    fi
    work=$(mktemp -d)
    pids=()
    trap bench_cleanup EXIT
    http=$(free_port)
    env=(MEDBUS_DATA_DIR="$work/data" MEDBUS_HTTP_ADDR="127.0.0.1:$http" MEDBUS_LOG_LEVEL=warn)
    if [[ $mode == jetstream ]]; then
        local nats
        nats=$(free_port)
        nats-server -a 127.0.0.1 -p "$nats" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
        pids+=($!)
        db="medbus_bench_$$"
        createdb -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" "$db"
        env+=(MEDBUS_BACKBONE_URL="nats://127.0.0.1:$nats"
            MEDBUS_STORE_URL="postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/$db?sslmode=${PGSSLMODE:-disable}")
        sleep 0.5
    elif [[ $mode != embedded ]]; then
        echo "$usage" >&2
        exit 2
    fi
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n "${db:-}" ]]; then dropdb -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" --if-exists "$db" || true; fi
    rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_medbus() {
    env "${env[@]}" MEDBUS_CONFIG="$work/medbus.toml" "$bin/medbus" serve >"$work/medbus.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && return 0
        sleep 0.1
    done
    cat "$work/medbus.log" >&2
    echo "medbus did not become ready" >&2
    exit 1
}

metric() { # sum of a counter's samples matching a label filter
    curl -sf "http://127.0.0.1:$http/metrics" | awk -v m="$1" -v f="$2" '$1 ~ "^"m"\\{" && $1 ~ f {s+=$2} END {print s+0}'
}

cpu_of() { # CPU seconds (user + system) used so far by processes named $1 (all of them)
    local tck total=0 pid
    tck=$(getconf CLK_TCK)
    for pid in $(pgrep -x "$1" || true); do
        [[ -r /proc/$pid/stat ]] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "scale=2; $total / $tck" | bc
}
