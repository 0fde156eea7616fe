#!/usr/bin/env bash
# Headless-browser tests against the real inquiryd binary: examples/contact-form.html
# (form.test.mjs), the admin console (console.test.mjs) and examples/internship.html
# with a file upload, with and without JavaScript (uploads.test.mjs).
# Installs what is missing (Debian's Chromium, sqlite3, playwright-core from the npm
# registry -- never a browser download), builds the binary when needed, runs the test.
#
#   bash tests/browser/run.sh                 # builds target/debug/inquiryd when missing or stale
#   INQUIRYD_BIN=path/to/inquiryd bash tests/browser/run.sh
#
# Screenshots: target/browser/*.png. The last line is "N passed, M failed", summed
# over both test files; the exit status is non-zero when any failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if ((${#need[@]})); then
    echo "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [[ ! -d tests/browser/node_modules/playwright-core || ! -d tests/browser/node_modules/axe-core ]]; then
    # playwright-core has no install script and downloads no browser; axe-core is
    # the accessibility engine the console test runs in each page.
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

if [[ -z "${INQUIRYD_BIN:-}" ]]; then
    bin=target/debug/inquiryd
    # The page is compiled into the binary (include_str!): rebuild when it or the code changed.
    if [[ ! -x $bin ]] || [[ -n "$(find src examples migrations config Cargo.toml Cargo.lock \
            -newer "$bin" -print -quit)" ]]; then
        cargo build --locked --bin inquiryd
    fi
fi
# The console test's SMTP sink (mailin-embedded), a real server its emails reach.
if [[ -z "${SMTP_SINK_BIN:-}" && ( ! -x target/debug/examples/smtp_sink || examples/smtp_sink.rs -nt target/debug/examples/smtp_sink ) ]]; then
    cargo build --locked --example smtp_sink
fi

passed=0
failed=0
status=0
for test in form console uploads; do
    log=$(mktemp)
    node "tests/browser/$test.test.mjs" 2>&1 | tee "$log" || status=1
    summary=$(tail -n 1 "$log")
    rm -f "$log"
    if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        echo "$test.test.mjs ended without a summary line"
        failed=$((failed + 1))
    fi
done
((failed == 0)) || status=1
echo "$passed passed, $failed failed"
exit $status
