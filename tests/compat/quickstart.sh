#!/usr/bin/env bash
# Checks the README's quick start verbatim: starts the gateway with the README's run command, runs the
# README's curl commands against it, then drives it with the official OpenAI JS SDK.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# Pull a fenced code block that follows a marker comment out of the README.
readme_block() {
  awk -v marker="<!-- $1 -->" '
    $0 == marker { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' README.md
}

RUN_COMMAND="$(readme_block quickstart-run)"
CURL_COMMANDS="$(readme_block quickstart-curl)"
[[ -n "$RUN_COMMAND" && -n "$CURL_COMMANDS" ]] || { echo "README quick-start blocks not found"; exit 1; }

for port in 8080 8091; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is busy; the quick start needs it"; exit 1
  fi
done

LOG="$(mktemp)"
echo "\$ $RUN_COMMAND"
# The run command gets a process group of its own (setsid: this script has no job control, so the background job is
# not a group leader and setsid does not fork; $! is the group's id). Stopping that group stops `dotnet run` and the
# gateway it started, and nothing else: other gateways on the machine are left alone.
setsid bash -c "$RUN_COMMAND" > "$LOG" 2>&1 &
GATEWAY_PGID=$!
stop_gateway() {
  kill -TERM -- "-$GATEWAY_PGID" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 -- "-$GATEWAY_PGID" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$GATEWAY_PGID" 2>/dev/null || true
  wait "$GATEWAY_PGID" 2>/dev/null || true
}
trap stop_gateway EXIT

for _ in $(seq 1 600); do
  curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  kill -0 "$GATEWAY_PGID" 2>/dev/null || { cat "$LOG"; echo "gateway exited"; exit 1; }
  sleep 0.2
done
curl -fsS http://127.0.0.1:8080/readyz

echo
while IFS= read -r line; do
  [[ -z "$line" ]] && continue
  echo "\$ $line"
  output="$(bash -c "$line")"
  echo "$output"
  grep -q '"chat.completion' <<< "$output" || { echo "README curl did not return a chat completion"; exit 1; }
done < <(awk '/\\$/ { sub(/\\$/, ""); buf = buf $0; next } { print buf $0; buf = "" }' <<< "$CURL_COMMANDS")

cd "$ROOT/tests/compat"
[[ -d node_modules/openai ]] || npm ci --no-audit --no-fund >/dev/null
LLMPROXY_URL=http://127.0.0.1:8080 node --test openai-js.test.mjs
