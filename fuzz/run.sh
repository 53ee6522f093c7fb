#!/usr/bin/env bash
# Runs each fuzz target for a bounded time on the stable toolchain (no
# sanitizer), starting from the committed seeds and the local corpus.
#
#   fuzz/run.sh                          every target, 60 s each
#   FUZZ_SECONDS=300 fuzz/run.sh value   one target, 5 minutes
#   FUZZ_SANITIZER=address RUSTC_BOOTSTRAP=1 fuzz/run.sh   with ASan
#   FUZZ_ARGS="-malloc_limit_mb=64" ...  more libFuzzer flags (the malloc
#                                        limit needs a sanitizer's hooks)
#
# Crashes are saved under fuzz/artifacts/<target>/; the script goes on with
# the next target and exits non-zero if any target failed. Each target's
# libFuzzer output is kept in fuzz/logs/<target>.log.
set -uo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz || exit 1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build --sanitizer "$sanitizer" || exit 1

mkdir -p logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    corpora=("corpus/$target")
    [ -d "seeds/$target" ] && corpora+=("seeds/$target")
    echo "==> $target: ${seconds}s, sanitizer ${sanitizer}"
    if cargo fuzz run --sanitizer "$sanitizer" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" >"logs/$target.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    runs=$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "logs/$target.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "logs/$target.log" | tail -1)
    echo "    $status: ${runs:-no summary (see logs/$target.log)}; ${cov:-}"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
    exit 1
fi
