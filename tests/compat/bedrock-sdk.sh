#!/usr/bin/env bash
# Checks the simulator's Bedrock Runtime endpoints with AWS's own JS SDK (@aws-sdk/client-bedrock-runtime):
# starts the built simulator standalone on a free loopback port, runs bedrock-sdk.test.mjs against it with
# node's test runner (TAP output, "# pass N" / "# fail N"), and stops the simulator on exit.
# Expects the solution to be built (Release, as tests/run.sh does; Debug is used when only that exists).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COMPAT="$ROOT/tests/compat"

SIMULATOR_DLL=""
for configuration in Release Debug; do
  candidate="$ROOT/src/LlmProxy.Simulator/bin/$configuration/net10.0/LlmProxy.Simulator.dll"
  if [[ -f "$candidate" ]]; then SIMULATOR_DLL="$candidate"; break; fi
done
if [[ -z "$SIMULATOR_DLL" ]]; then
  echo "LlmProxy.Simulator is not built: building it (Release)"
  dotnet build "$ROOT/src/LlmProxy.Simulator" -c Release --nologo -v quiet
  SIMULATOR_DLL="$ROOT/src/LlmProxy.Simulator/bin/Release/net10.0/LlmProxy.Simulator.dll"
fi

cd "$COMPAT"
if [[ ! -d node_modules/@aws-sdk/client-bedrock-runtime || ! -d node_modules/@smithy/node-http-handler ]]; then
  npm ci --no-audit --no-fund >/dev/null
fi

PORT="$(node -e "const s = require('net').createServer(); s.listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });")"
URL="http://127.0.0.1:$PORT"
LOG="$(mktemp)"
dotnet "$SIMULATOR_DLL" --urls "$URL" > "$LOG" 2>&1 &
SIMULATOR_PID=$!
stop_simulator() {
  kill "$SIMULATOR_PID" 2>/dev/null || true
  wait "$SIMULATOR_PID" 2>/dev/null || true
  rm -f "$LOG"
}
trap stop_simulator EXIT

for _ in $(seq 1 150); do
  curl -fsS "$URL/_sim/faults" >/dev/null 2>&1 && break
  if ! kill -0 "$SIMULATOR_PID" 2>/dev/null; then cat "$LOG"; echo "the simulator exited"; exit 1; fi
  sleep 0.2
done
curl -fsS "$URL/_sim/faults" >/dev/null || { cat "$LOG"; echo "the simulator did not start on $URL"; exit 1; }

echo "simulator: $SIMULATOR_DLL on $URL"
BEDROCK_SIM_URL="$URL" node --test --test-reporter=tap bedrock-sdk.test.mjs
