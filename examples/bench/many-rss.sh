#!/usr/bin/env bash
# The server's resident memory per connection under scenario `many`: starts
# a server, reads its VmRSS (/proc/PID/status) once it listens, runs the
# client (`--scenario many`), reads VmRSS again halfway through the measured
# window, and prints both with the difference per open connection (counted
# as the server's socket descriptors, its listeners left out).
#
#   cargo build --release -p examples --bin rpc-bench
#   examples/bench/many-rss.sh --codec bincode            # rpc-bench, 2,000 connections
#   examples/bench/many-rss.sh --codec http --conns 4000
#   examples/bench/many-rss.sh --codec raw \
#       --server /tmp/peerbench-target/release/raw-server \
#       --client /tmp/peerbench-target/release/raw-client   # any peerbench system
#
# Linux only (/proc). Both processes need `ulimit -n` above the connection
# count (the shell's limit is inherited).
set -euo pipefail

bench=target/release/rpc-bench
server="" client="" codec=bincode conns=2000 warmup=1 duration=3
while (($#)); do
    case $1 in
        --codec) codec=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --server) server=$2; shift 2 ;;
        --client) client=$2; shift 2 ;;
        --warmup-s) warmup=$2; shift 2 ;;
        --duration-s) duration=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
server=${server:-"$bench server"} client=${client:-"$bench client"}

out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
# shellcheck disable=SC2086 # the commands are words on purpose
$server --addr 127.0.0.1:0 --codec "$codec" >"$out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '^listening ' "$out" && break; sleep 0.1; done
addr=$(awk '/^listening /{print $2; exit}' "$out")
[[ -n $addr ]] || { echo "the server did not announce its address" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$pid/status"; }
sockets() { find "/proc/$pid/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
sleep 0.3
idle_kb=$(rss_kb) idle_sockets=$(sockets)

# shellcheck disable=SC2086
$client --addr "$addr" --scenario many --codec "$codec" --conns "$conns" \
    --warmup-s "$warmup" --duration-s "$duration" >"$out.client" &
cpid=$!
sleep "$(echo "$warmup + $duration / 2" | bc -l)"
load_kb=$(rss_kb) load_sockets=$(sockets)
wait "$cpid"
calls_per_s=$(grep -o '"calls_per_s":[0-9.]*' "$out.client" | cut -d: -f2)
rm -f "$out.client"

open=$((load_sockets - idle_sockets))
echo "codec=$codec conns=$conns open=$open idle_rss_kb=$idle_kb load_rss_kb=$load_kb" \
    "per_conn_bytes=$(( (load_kb - idle_kb) * 1024 / (open > 0 ? open : 1) ))" \
    "calls_per_s=$calls_per_s"
