#!/usr/bin/env bash
# PostgreSQL: `dbwm embed` of a table into a new table against a plain
# `COPY ... TO STDOUT | COPY ... FROM STDIN` of the same table, in one run.
#
#   scripts/pg_bench.sh postgresql://user:password@127.0.0.1:5432/db [ROWS]
#
# Needs psql and `cargo build --release`; creates and drops tables
# bench_src, bench_plain and bench_copy.
set -euo pipefail
url=$1
rows=${2:-1000000}
dbwm="$(dirname "$0")/../target/release/dbwm"
psql_() { psql -q -X -v ON_ERROR_STOP=1 "$url" "$@"; }
psql_ -c "DROP TABLE IF EXISTS bench_src, bench_plain, bench_copy"
psql_ -c "CREATE TABLE bench_src (id bigint PRIMARY KEY, carrier char(2) NOT NULL, qty int,
    amount numeric(12,2), price float8, day date, note text)"
psql_ -c "INSERT INTO bench_src SELECT i, (ARRAY['AA','UA','DL'])[1 + i % 3], 1 + i * 37 % 900,
    (5 + i * 7919 % 100000 / 100.0)::numeric(12,2), (i * 31 % 100000) / 100.0,
    date '2020-01-01' + (i % 1500)::int, 'note ' || i FROM generate_series(1::bigint, $rows) i"
psql_ -c "VACUUM ANALYZE bench_src"
for run in 1 2 3; do
    psql_ -c "DROP TABLE IF EXISTS bench_plain, bench_copy"
    psql_ -c "CREATE TABLE bench_plain (LIKE bench_src INCLUDING ALL)"
    start=$(date +%s.%N)
    psql_ -c "COPY bench_src TO STDOUT" | psql_ -c "COPY bench_plain FROM STDIN"
    plain=$(echo "$(date +%s.%N) - $start" | bc)
    start=$(date +%s.%N)
    DBWM_KEY=bench "$dbwm" embed --content "acme->bench" "$url" --table bench_src \
        -o "$url" --output-table bench_copy 2>/dev/null
    marked=$(echo "$(date +%s.%N) - $start" | bc)
    printf 'run %d, %d rows: plain COPY out and in %.2f s, dbwm embed %.2f s, ratio %.2f\n' \
        "$run" "$rows" "$plain" "$marked" "$(echo "$marked / $plain" | bc -l)"
done
psql_ -c "DROP TABLE IF EXISTS bench_src, bench_plain, bench_copy"
