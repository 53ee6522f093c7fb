#!/usr/bin/env bash
# Instructions per call of rpc-bench's server and client, counted by
# `valgrind --tool=callgrind`: what a wall-clock ratio between runs is too
# noisy to show when the difference is a few percent (the middleware's cost).
#
#   cargo build --release -p examples --bin rpc-bench        # `debug = 1` keeps symbols
#   examples/bench/callgrind.sh --codec bincode --calls 20000,40000 --runs 3 \
#       base=/work/wt-base/target/release/rpc-bench \
#       branch=target/release/rpc-bench \
#       noop=target/release/rpc-bench,--layer,noop
#
# Each BUILD is NAME=BINARY[,extra server argument]…; for each build, side
# (--sides server,client), call count and run, one end runs under callgrind and
# the other natively, the client (`--scenario pipe` unless --scenario says
# otherwise) doing exactly that many calls (`--calls`). Start-up and shutdown
# cost the same at every count, so the per-call figure is the difference of
# the medians at the largest and smallest counts over the difference in calls.
# The server, which runs until stopped, is ended by SIGTERM; callgrind writes
# its counts then. Prints one line per run, then a table; the callgrind files
# stay in --out (default: a fresh temp dir) for callgrind_annotate.
set -euo pipefail

codec=bincode scenario=pipe calls=20000,40000 runs=3 sides=server,client out=""
builds=()
while (($#)); do
    case $1 in
        --codec) codec=$2; shift 2 ;;
        --scenario) scenario=$2; shift 2 ;;
        --calls) calls=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --sides) sides=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *=*) builds+=("$1"); shift ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
((${#builds[@]})) || { echo "name at least one NAME=BINARY (see --help)" >&2; exit 2; }
out=${out:-$(mktemp -d "${TMPDIR:-/tmp}/rpc-callgrind.XXXXXX")}
mkdir -p "$out"
IFS=, read -ra counts <<<"$calls"
IFS=, read -ra side_list <<<"$sides"
cg=(valgrind --tool=callgrind --dump-instr=no --dump-line=yes)

# The total instructions of a callgrind file.
total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# Starts a server (its command in "$@") in the background, its pid in
# server_pid, and waits for its address, which it puts in addr.
start_server() {
    local log=$1; shift
    "$@" >"$log" 2>"$log.err" &
    server_pid=$!
    for _ in $(seq 600); do
        if read -r word addr 2>/dev/null <"$log" && [[ $word == listening ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "the server did not announce its address (see $log.err)" >&2; return 1
}

stop_server() {
    [[ -n ${server_pid:-} ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# One run: prints the instructions of the measured side.
measure() {
    local name=$1 bin=$2 side=$3 n=$4 run=$5; shift 5
    local file="$out/$name.$side.$codec.$scenario.$n.$run.cg" addr
    server_pid=""
    trap stop_server EXIT # runs in a $(…) subshell: a failed run stops its server too
    local client=(client --scenario "$scenario" --codec "$codec" --warmup-s 0
                  --duration-s 100000 --calls "$n")
    if [[ $side == server ]]; then
        start_server "$file.log" "${cg[@]}" --callgrind-out-file="$file" \
            "$bin" server --codec "$codec" "$@"
        timeout 900 "$bin" "${client[@]}" --addr "$addr" >"$file.client"
        stop_server
    else
        start_server "$file.log" "$bin" server --codec "$codec" "$@"
        timeout 900 "${cg[@]}" --callgrind-out-file="$file" --log-file="$file.vg" \
            "$bin" "${client[@]}" --addr "$addr" >"$file.client"
        stop_server
    fi
    grep -q "\"calls\":$n," "$file.client" || { echo "run $file: not $n calls" >&2; return 1; }
    total "$file"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A per_call
for build in "${builds[@]}"; do
    name=${build%%=*}
    IFS=, read -ra spec <<<"${build#*=}"
    for side in "${side_list[@]}"; do
        for n in "${counts[@]}"; do
            : >"$out/$name.$side.$n.ir"
            for run in $(seq "$runs"); do
                ir=$(measure "$name" "${spec[0]}" "$side" "$n" "$run" "${spec[@]:1}")
                echo "$name $side $codec $scenario calls=$n run=$run Ir=$ir"
                echo "$ir" >>"$out/$name.$side.$n.ir"
            done
        done
        lo=${counts[0]} hi=${counts[-1]}
        a=$(median <"$out/$name.$side.$lo.ir") b=$(median <"$out/$name.$side.$hi.ir")
        per_call[$name.$side]=$(awk -v a="$a" -v b="$b" -v lo="$lo" -v hi="$hi" \
            'BEGIN { printf "%.0f", (b - a) / (hi - lo) }')
    done
done

echo
echo "instructions per call ($codec, $scenario; median of $runs runs at ${counts[0]} and ${counts[-1]} calls)"
printf '%-12s' build; for side in "${side_list[@]}"; do printf '%12s' "$side"; done; echo
for build in "${builds[@]}"; do
    name=${build%%=*}
    printf '%-12s' "$name"
    for side in "${side_list[@]}"; do printf '%12s' "${per_call[$name.$side]}"; done; echo
done
echo "callgrind files: $out"
