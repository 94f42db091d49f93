#!/usr/bin/env bash
# Validates a Prometheus scrape of the gateway with promtool.
#
#   tests/LlmProxy.Tests/Telemetry/promtool-check.sh <scrape-file>
#   e.g. curl -fsS http://127.0.0.1:8080/metrics > scrape.txt && tests/LlmProxy.Tests/Telemetry/promtool-check.sh scrape.txt
#
# Fails (non-zero) when promtool is missing, when the file is missing or empty, when `promtool check metrics`
# reports anything at all (parse errors exit 1, lint problems exit 3: both fail here, the gateway's output is
# expected to be lint-clean), or when a series appears twice (promtool 2.42 does not catch duplicate series).
# promtool comes with the Debian package `prometheus`: apt-get update && apt-get install -y prometheus
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <scrape-file>" >&2
    exit 2
fi
file=$1

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool-check: FAILED: promtool is not installed (apt-get update && apt-get install -y prometheus)" >&2
    exit 127
fi
if [[ ! -s "$file" ]]; then
    echo "promtool-check: FAILED: scrape file '$file' is missing or empty" >&2
    exit 2
fi

status=0
output=$(promtool check metrics < "$file" 2>&1) || status=$?
if [[ $status -ne 0 || -n "$output" ]]; then
    echo "promtool-check: FAILED: 'promtool check metrics' exited $status for $file:" >&2
    printf '%s\n' "$output" >&2
    exit 1
fi

# A sample line is "<name>{<labels>} <value>" (no timestamps): the series is everything before the last space.
duplicates=$(grep -v '^#' "$file" | grep -v '^[[:space:]]*$' | sed 's/ [^ ]*$//' | sort | uniq -d || true)
if [[ -n "$duplicates" ]]; then
    echo "promtool-check: FAILED: series written more than once in $file:" >&2
    printf '%s\n' "$duplicates" >&2
    exit 1
fi

families=$(grep -c '^# TYPE ' "$file" || true)
samples=$(grep -vc '^#' "$file" || true)
echo "promtool-check: OK: $file ($families metric families, $samples samples, $(promtool --version 2>&1 | head -n 1))"
