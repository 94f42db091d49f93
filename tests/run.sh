#!/usr/bin/env bash
# Runs LlmProxy's whole test suite on a fresh machine: installs what the tests need (redis-server,
# promtool, the npm packages of the compatibility checks), starts real servers on loopback, runs every
# test project and compatibility script, stops the servers, and ends with "N passed, N failed".
#
# Usage: bash tests/run.sh            (from the repository root or anywhere)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ARTIFACTS="$ROOT/artifacts/test"
rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS"

# shellcheck source=tests/scripts/services.sh
source "$ROOT/tests/scripts/services.sh"
trap services_stop_all EXIT

passed=0
failed=0
record() { passed=$((passed + $1)); failed=$((failed + $2)); }

echo "== Preparing test services"
services_start_all || { echo "could not start the test services"; echo "0 passed, 1 failed"; exit 1; }

echo "== Building"
if ! dotnet build "$ROOT/LlmProxy.sln" -c Release --nologo -v minimal -warnaserror > "$ARTIFACTS/build.log" 2>&1; then
  tail -n 40 "$ARTIFACTS/build.log"
  echo "0 passed, 1 failed"
  exit 1
fi

run_dotnet_tests() {
  local project="$1" log="$ARTIFACTS/$(basename "$1").log"
  echo "== $project"
  dotnet test "$project" -c Release --no-build --nologo 2>&1 | tee "$log" | grep -E "^\s*(Failed|Passed|Skipped) |error|Passed!|Failed!" || true
  local summary p f
  summary=$(grep -E "(Passed|Failed)! +- +Failed: +[0-9]+, Passed: +[0-9]+" "$log" | tail -n 1)
  if [[ -z "$summary" ]]; then
    echo "   no test summary from $project (see $log)"
    record 0 1
    return
  fi
  f=$(sed -E 's/.*Failed: +([0-9]+),.*/\1/' <<< "$summary")
  p=$(sed -E 's/.*Passed: +([0-9]+),.*/\1/' <<< "$summary")
  record "$p" "$f"
}

export LLMPROXY_TEST_SCRAPE_FILE="$ARTIFACTS/metrics-scrape.txt"
run_dotnet_tests tests/LlmProxy.Tests
run_dotnet_tests tests/LlmProxy.IntegrationTests

echo "== promtool check metrics (a real scrape taken by the integration tests)"
if [[ -s "$LLMPROXY_TEST_SCRAPE_FILE" ]] && bash tests/LlmProxy.Tests/Telemetry/promtool-check.sh "$LLMPROXY_TEST_SCRAPE_FILE"; then
  record 1 0
else
  echo "   promtool rejected the scrape, or no scrape was taken"
  record 0 1
fi

echo "== observability config (Prometheus config, alert rules, Grafana dashboard queries)"
if bash tests/scripts/check-observability-config.sh > "$ARTIFACTS/observability-config.log" 2>&1; then
  record 1 0
else
  cat "$ARTIFACTS/observability-config.log"
  record 0 1
fi

echo "== Kubernetes manifests (kustomization renders when kubectl is installed; structure and consistency)"
if bash tests/scripts/check-kubernetes-manifests.sh > "$ARTIFACTS/kubernetes-manifests.log" 2>&1; then
  record 1 0
else
  cat "$ARTIFACTS/kubernetes-manifests.log"
  record 0 1
fi

for script in "$ROOT"/tests/compat/*.sh; do
  [[ -e "$script" ]] || continue
  echo "== $(basename "$script")"
  log="$ARTIFACTS/$(basename "$script").log"
  if bash "$script" > "$log" 2>&1; then
    p=$(grep -E "^# pass [0-9]+" "$log" | awk '{s+=$3} END {print s+0}')
    f=$(grep -E "^# fail [0-9]+" "$log" | awk '{s+=$3} END {print s+0}')
    [[ "$p" -eq 0 && "$f" -eq 0 ]] && p=1
    record "$p" "$f"
  else
    tail -n 40 "$log"
    p=$(grep -E "^# pass [0-9]+" "$log" | awk '{s+=$3} END {print s+0}')
    f=$(grep -E "^# fail [0-9]+" "$log" | awk '{s+=$3} END {print s+0}')
    [[ "$f" -eq 0 ]] && f=1
    record "$p" "$f"
  fi
done

echo
echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
