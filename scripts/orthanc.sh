#!/usr/bin/env bash
# Orthanc (Debian package `orthanc`, a real PACS) in a private network
# namespace, for trying medbus's forwarding to a PACS by hand and for
# benchmarks. Orthanc binds every interface and cannot be told otherwise;
# this machine may expose loopback only, so it gets a namespace of its own.
#
#   scripts/orthanc.sh start DIR   config, storage, log and pids under DIR
#   scripts/orthanc.sh stop DIR    stop Orthanc and the relays, delete the namespace
#
# Inside the namespace (named by ORTHANC_NETNS, default medbus-orthanc)
# Orthanc has AE title ORTHANC, DICOM port 4242 and REST port 8042, no
# authentication, and accepts stores from any AE. Reach it
#   - from inside:  ip netns exec medbus-orthanc storescu -aec ORTHANC 127.0.0.1 4242 FILE...
#                   ip netns exec medbus-orthanc curl -s http://127.0.0.1:8042/statistics
#   - from here:    with socat installed, `start` also relays 127.0.0.1:ORTHANC_DICOM_PORT
#                   (default 4242) and 127.0.0.1:ORTHANC_HTTP_PORT (default 8042) into the
#                   namespace, so `medbus serve` with [dicom_destinations.orthanc] host =
#                   "127.0.0.1", port = 4242, called_ae = "ORTHANC" forwards to it. The relay
#                   starts a process per connection: fine by hand, not for measuring; run a
#                   benchmark's sender inside the namespace instead.
# Orthanc gets TCP_NODELAY=1 (and TcpNoDelay): Debian's build otherwise waits
# ~40 ms per C-STORE (Nagle). Needs root (ip netns), `apt-get install -y orthanc`.
set -euo pipefail

die() { echo "orthanc.sh: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: scripts/orthanc.sh start|stop DIR"
ns=${ORTHANC_NETNS:-medbus-orthanc}
dicom_port=${ORTHANC_DICOM_PORT:-4242}
http_port=${ORTHANC_HTTP_PORT:-8042}

stop_pid() {
    local f=$1
    [ -f "$f" ] || return 0
    local pid
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
}

case "$cmd" in
start)
    [ "$(id -u)" = 0 ] || die "needs root to make a network namespace"
    command -v Orthanc >/dev/null || die "Orthanc not found: apt-get install -y orthanc"
    mkdir -p "$dir/db"
    dir=$(cd "$dir" && pwd)
    [ ! -f "$dir/orthanc.pid" ] || die "already started from $dir (scripts/orthanc.sh stop $dir)"
    ip netns add "$ns" || die "cannot create namespace $ns (left over? ip netns delete $ns)"
    echo "$ns" >"$dir/netns"
    ip netns exec "$ns" ip link set lo up
    cat >"$dir/orthanc.json" <<EOF
{
  "Name": "medbus-orthanc",
  "StorageDirectory": "$dir/db",
  "IndexDirectory": "$dir/db",
  "StorageCompression": false,
  "Plugins": [],
  "HttpPort": 8042,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomAet": "ORTHANC",
  "DicomPort": 4242,
  "DicomCheckCalledAet": false,
  "DicomAlwaysAllowStore": true,
  "DicomAlwaysAllowEcho": true,
  "UnknownSopClassAccepted": true,
  "TcpNoDelay": true
}
EOF
    ip netns exec "$ns" env TCP_NODELAY=1 Orthanc "$dir/orthanc.json" >"$dir/orthanc.log" 2>&1 &
    echo $! >"$dir/orthanc.pid"
    # Ready when the REST API answers (bash's /dev/tcp: no curl needed inside).
    for _ in $(seq 300); do
        if ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8042 && printf "GET /system HTTP/1.0\r\n\r\n" >&3 && head -1 <&3' 2>/dev/null | grep -q " 200"; then
            break
        fi
        kill -0 "$(cat "$dir/orthanc.pid")" 2>/dev/null || { cat "$dir/orthanc.log" >&2; die "Orthanc exited"; }
        sleep 0.1
    done
    if command -v socat >/dev/null; then
        socat "TCP-LISTEN:$dicom_port,bind=127.0.0.1,reuseaddr,fork" \
            "EXEC:ip netns exec $ns socat STDIO TCP\:127.0.0.1\:4242" >>"$dir/relay.log" 2>&1 &
        echo $! >"$dir/relay-dicom.pid"
        socat "TCP-LISTEN:$http_port,bind=127.0.0.1,reuseaddr,fork" \
            "EXEC:ip netns exec $ns socat STDIO TCP\:127.0.0.1\:8042" >>"$dir/relay.log" 2>&1 &
        echo $! >"$dir/relay-http.pid"
        echo "Orthanc up in namespace $ns; relayed at 127.0.0.1:$dicom_port (DICOM, AE ORTHANC) and http://127.0.0.1:$http_port"
    else
        echo "Orthanc up in namespace $ns (DICOM 4242, AE ORTHANC; REST 8042); no socat, so no relay: use ip netns exec $ns ..."
    fi
    ;;
stop)
    [ -d "$dir" ] || die "no such directory: $dir"
    stop_pid "$dir/relay-dicom.pid"
    stop_pid "$dir/relay-http.pid"
    stop_pid "$dir/orthanc.pid"
    if [ -f "$dir/netns" ]; then
        ip netns delete "$(cat "$dir/netns")" 2>/dev/null || true
        rm -f "$dir/netns"
    fi
    echo "Orthanc stopped"
    ;;
*)
    die "usage: scripts/orthanc.sh start|stop DIR"
    ;;
esac
