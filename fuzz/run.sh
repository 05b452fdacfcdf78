#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS [TARGET...]
#
# Runs every cargo-fuzz target (or the ones named) for SECONDS each, one after
# the other, seeded from the repository's fixtures and fuzz/seeds/. Needs
# cargo-fuzz (`cargo install cargo-fuzz`); only stable Rust is installed, so
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags. New corpus entries
# go to fuzz/corpus/TARGET (not committed); every crash, timeout or
# out-of-memory input is copied to fuzz/regressions/TARGET/, which the crates'
# normal tests replay. Prints one line per target: executions, peak RSS, result.
set -u
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(shs_label shs_mime shs_management shs_message_list ssbtek_question
        ssbtek_envelope ssbtek_lefi elt_report elt_envelope)
fi

seeds() {
    case $1 in
        shs_mime) echo ../relay/shs/tests/fixtures ;;
        ssbtek_question) echo ../relay/ssbtek/tests/fixtures/questions ;;
        ssbtek_envelope) echo ../relay/ssbtek/tests/fixtures/questions ../contracts/ssbtek-v10/composite-fixtures ;;
        *) echo "seeds/$1" ;;
    esac
}

export RUSTC_BOOTSTRAP=1
cargo fuzz build -O >/dev/null
mkdir -p logs
printf '%-18s %14s %10s  %s\n' target executions peak_rss result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # shellcheck disable=SC2046
    cargo fuzz run -O "$t" "corpus/$t" $(seeds "$t") -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"logs/$t.log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' | tail -1)
    rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' | tail -1)
    result="no crash"
    found=$(ls "artifacts/$t" 2>/dev/null | grep -E '^(crash|timeout|oom|leak)-' || true)
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        result="FOUND (exit $rc): see fuzz/logs/$t.log"
        mkdir -p "regressions/$t"
        for f in $found; do cp "artifacts/$t/$f" "regressions/$t/$f"; done
    fi
    printf '%-18s %14s %8s MB  %s\n' "$t" "${execs:-?}" "${rss:-?}" "$result"
done
