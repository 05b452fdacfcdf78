#!/usr/bin/env bash
# Throughput of the store engines and of one versus two relay nodes (a bench,
# not a test; loopback only, every run bounded by --duration):
#
#   bash benches/ha.sh [SECONDS] [CONCURRENCY] [ASYNC_CONCURRENCY]   (defaults: 10 s, 8, 4)
#
# Asynchronous runs send from one organisation, which may stream in at most
# `mailbox.max_uploads_per_sender` (default 4) messages at once; more are
# answered 503 by design, so they run at ASYNC_CONCURRENCY.
#
# Needs PostgreSQL: SHS_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/test (each demo uses a schema of its own).
# Runs, each on a fresh demo stack (release build, simulated agencies at zero
# latency):
#   1. asynchronous send -> fetch -> ack, one node on redb;
#   2. the same, one node on PostgreSQL;
#   3. the same, two nodes on PostgreSQL (sent through one node, fetched and
#      acknowledged through the other);
#   4. SSBTEK synchronous queries, one node;
#   5. SSBTEK synchronous queries, two nodes on PostgreSQL, spread over both.
# The figures and the machine they were taken on go into
# docs/high-availability.md ("Measured").
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONC=${2:-8}
ASYNC_CONC=${3:-4}
PG=${SHS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

cargo build --release --workspace --bins -q
B=./target/release/shs-bench
COMMON=(--start --zero-latency --duration "$SECS" --concurrency "$CONC" --warmup 20)
ASYNC=(--start --zero-latency --duration "$SECS" --concurrency "$ASYNC_CONC" --warmup 20)

echo "== 1. async, one node, redb"
"$B" "${ASYNC[@]}" --workload async
echo "== 2. async, one node, PostgreSQL"
"$B" "${ASYNC[@]}" --workload async --postgres "$PG"
echo "== 3. async, two nodes, PostgreSQL (send at one, fetch and ack at the other)"
"$B" "${ASYNC[@]}" --workload async --nodes 2 --postgres "$PG" --all-nodes
echo "== 4. SSBTEK synch, one node"
"$B" "${COMMON[@]}" --workload shs
echo "== 5. SSBTEK synch, two nodes on PostgreSQL, spread over both"
"$B" "${COMMON[@]}" --workload shs --nodes 2 --postgres "$PG" --all-nodes
