#!/usr/bin/env bash
# HL7 v2 end-to-end benchmark: the real medbus binary (release), one MLLP
# channel, and the load generator on the same machine.
#
#   scripts/bench-hl7.sh embedded  [CONNECTIONS] [COUNT]
#   scripts/bench-hl7.sh jetstream [CONNECTIONS] [COUNT]   # private nats-server + a fresh PostgreSQL database
#   MIX=full scripts/bench-hl7.sh jetstream 8 10000       # ADT + ORM + ORU + DFT + SIU through every service
#
# Prints the simulator's report (ingest: ACK after the durable ack), then how
# long the router and the registration service took to finish the same
# messages (from the first ACK to the last one processed), read from /metrics.
# On jetstream it also prints the latency from receipt (just before the ACK)
# to the last service commit of each message, p50/p99, from the store.
# Shared set-up in scripts/bench-lib.sh (the store over plain TCP; PGSSLMODE to change).
# Needs: cargo; for jetstream, nats-server on PATH and PostgreSQL answering on
# PGHOST/PGPORT (default 127.0.0.1:5432, user postgres) with createdb rights.
set -euo pipefail

mode=${1:-embedded}
conns=${2:-8}
count=${3:-10000}
mix=${MIX:-adt}
source "$(dirname "$0")/bench-lib.sh"
bench_setup "$mode" "usage: $0 embedded|jetstream [CONNECTIONS] [COUNT]"
mllp=$(free_port)
cat >"$work/medbus.toml" <<EOF
[channels.bench]
listen = "127.0.0.1:$mllp"
max_connections = 512
[services.results]
critical_values = "$root/config/tables/critical_values.csv"
[services.billing]
charge_master = "$root/config/tables/charge_master.csv"
EOF
start_medbus

cpu_before=("$(cpu_of medbus)" "$(cpu_of nats-server)" "$(cpu_of postgres)")
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$work/sim.cpu" \
    "$bin/medbus-sim" hl7 --addr "127.0.0.1:$mllp" --connections "$conns" --count "$count" --mix "$mix" --id-prefix "B$$-"
acked=$(date +%s.%N)
cpu_after=("$(cpu_of medbus)" "$(cpu_of nats-server)" "$(cpu_of postgres)")
read -r sim_user sim_sys <"$work/sim.cpu"
echo "CPU during ingest (s): medbus $(echo "${cpu_after[0]} - ${cpu_before[0]}" | bc)" \
    "nats-server $(echo "${cpu_after[1]} - ${cpu_before[1]}" | bc)" \
    "postgres $(echo "${cpu_after[2]} - ${cpu_before[2]}" | bc)" \
    "simulator $(echo "$sim_user + $sim_sys" | bc)" \
    "of $(echo "($acked - $start) * $(nproc)" | bc) available"
# Every message becomes one or more events; wait until the router has settled all
# messages and the registration feed has gone quiet.
routed=0
last_applied=-1
applied=0
while :; do
    routed=$(metric medbus_routed_total 'outcome="(routed|filtered|resend|rejected|dead_lettered)"')
    applied=$(metric medbus_feed_settled_total 'outcome="(applied|dead_lettered)"')
    now=$(date +%s.%N)
    if (( routed >= count )) && [[ $applied == "$last_applied" ]]; then break; fi
    if (( $(echo "$now - $start > 600" | bc) )); then echo "gave up after 600 s" >&2; break; fi
    [[ $routed -ge $count && -z ${routed_at:-} ]] && routed_at=$now
    last_applied=$applied
    sleep 1
done
routed_at=${routed_at:-$now}
# Per service: events it settled (applied, skipped as another service's, dead-lettered).
curl -sf "http://127.0.0.1:$http/metrics" | awk '/^medbus_feed_settled_total\{/ {
    match($0, /consumer="[^"]*"/); c = substr($0, RSTART + 10, RLENGTH - 11)
    match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10)
    n[c] = n[c] " " o "=" $2 } END { for (c in n) print "  " c ":" n[c] }' | sort
python3 - "$start" "$acked" "$routed_at" "$now" "$count" "$routed" "$applied" <<'EOF'
import sys
start, acked, routed_at, done, count, routed, applied = map(float, sys.argv[1:])
print(f"ingest  : {count:.0f} messages ACKed in {acked-start:.2f} s")
print(f"router  : {routed:.0f} messages settled within {routed_at-start:.1f} s of the first send "
      f"(≈ {routed/(routed_at-start):,.0f} msg/s overall; ±1 s polling)")
print(f"services: {applied:.0f} events applied within {done-1-start:.1f} s (≈ {applied/max(done-1-start,1e-9):,.0f} events/s overall)")
EOF
if [[ $mode == jetstream ]]; then
    # Per message: receipt (just before its ACK) to the last event a service committed for it.
    psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d "$db" -At -F ' ' -c "
        SELECT count(*),
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)
        FROM (SELECT extract(epoch FROM greatest(max(e.recorded_at), max(a.applied_at)) - m.received_at) * 1000 AS ms
              FROM messages m JOIN events e ON e.correlation_id = m.correlation_id
              LEFT JOIN service_applied a ON a.event_id = e.id
              GROUP BY m.id, m.received_at) t" |
        awk '{printf "latency : receipt to last service commit, %d messages: p50 %s ms, p99 %s ms\n", $1, $2, $3}'
fi
