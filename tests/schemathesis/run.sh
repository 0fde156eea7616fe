#!/usr/bin/env bash
# Schemathesis against the real binary: every check, a fixed seed, bounded examples.
# Usage: bash tests/schemathesis/run.sh   (builds the debug binary; installs the
# pinned schemathesis into target/schemathesis-venv on first use)
# The last line is "N passed, M failed"; the exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --locked --bin inquiryd
bin=$PWD/target/debug/inquiryd
dir=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

cat > "$dir/inquiryd.toml" <<TOML
[server]
host = "127.0.0.1"
port = 0
[database]
url = "sqlite://$dir/inquiries.db"
[mail]
transport = "file"
file_dir = "$dir/mail"
[storage]
files_dir = "$dir/files"
[limits]
per_ip_per_minute = 1000000
per_ip_burst = 1000000
per_email_per_hour = 1000000
admin_failures_per_minute = 1000000
[log]
level = "warn"
TOML

"$bin" --config "$dir/inquiryd.toml" serve > "$dir/stdout" 2> "$dir/stderr" &
pid=$!
base=
for _ in $(seq 1 100); do
    base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$dir/stdout" | head -n 1 || true)
    [[ -n $base ]] && break
    sleep 0.1
done
[[ -n $base ]] || { cat "$dir/stderr"; echo "inquiryd did not start"; exit 1; }
token=$("$bin" --config "$dir/inquiryd.toml" token create --name schemathesis --scope write)

set +e
SCHEMATHESIS_HOOKS=hooks PYTHONPATH=tests/schemathesis "$venv/bin/st" run "$base/api/v1/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --seed 20261129 \
    --max-examples 40 \
    --request-timeout 10 \
    --generation-database none \
    --no-color 2>&1 | tee "$dir/report"
status=${PIPESTATUS[0]}
set -e
if grep -q "panicked" "$dir/stderr"; then
    cat "$dir/stderr"
    status=1
fi
# "1319 generated, 1319 passed, 16 skipped" or "1252 generated, 1 found 1 unique failure, ...".
counts=$(grep -E '^[[:space:]]+[0-9]+ generated' "$dir/report" | tail -n 1)
generated=$(grep -oE '[0-9]+ generated' <<<"$counts" | grep -oE '[0-9]+' || echo 0)
failed=$(grep -oE '[0-9]+ unique failure' <<<"$counts" | grep -oE '[0-9]+' || echo 0)
if [[ $status -ne 0 && $failed -eq 0 ]]; then
    failed=1   # an error (schema, network) rather than a failed check
fi
echo "schemathesis: $((generated - failed)) passed, $failed failed"
exit "$status"
