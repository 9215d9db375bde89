#!/usr/bin/env bash
# `dbwm serve` against its own OpenAPI document (docs/openapi.json) with
# schemathesis from PyPI: generated and mutated requests to every route,
# bounded (EXAMPLES per operation, default 25, fixed seed), loopback only.
# Fails on any 5xx or any response the document does not describe
# (status, content type, body schema, headers).
#
#   scripts/schemathesis.sh [EXAMPLES]
#
# Needs `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-25}
venv=${DBWM_ST_VENV:-target/schemathesis-venv}
[ -x "$venv/bin/st" ] || {
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "schemathesis>=4.3,<5"
}
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir/files"
cat > "$dir/serve.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "$dir/data"
files_root = "$dir/files"
TOML
token="st-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
DBWM_AUTH_TOKEN=$token target/release/dbwm serve --config "$dir/serve.toml" 2> "$dir/log" &
pid=$!
for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$dir/log")
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$dir/log" >&2; echo "schemathesis.sh: the server did not start" >&2; exit 1; }
start=$(date +%s)
"$venv/bin/st" run "http://$addr/openapi.json" --url "http://$addr" \
    -H "X-Auth-Token: $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" --seed 1 --request-timeout 30 --no-color
echo "schemathesis.sh: passed in $(( $(date +%s) - start )) s"
