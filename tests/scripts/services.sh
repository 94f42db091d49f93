#!/usr/bin/env bash
# Real servers for the tests, installed if missing and bound to 127.0.0.1 on free ports.
# Sourced by tests/run.sh; exports the addresses the tests read:
#   LLMPROXY_TEST_REDIS      host:port of a redis-server
#   LLMPROXY_TEST_DYNALITE   directory of the dynalite package (node <dir>/cli.js --port P), a
#                            DynamoDB-compatible server the tests start per test on their own port
# Every server started here is stopped by services_stop_all.

SERVICES_DIR="${SERVICES_DIR:-$(mktemp -d /tmp/llmproxy-test-services.XXXXXX)}"
SERVICES_PIDS=()

free_port() {
  python3 - <<'PY' 2>/dev/null || node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

apt_install() {
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "need $* but not running as root; install it and run again" >&2
    return 1
  fi
  if [[ -z "${SERVICES_APT_UPDATED:-}" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    SERVICES_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

wait_for_port() {
  local port="$1" tries=100
  while (( tries-- > 0 )); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { exec 3>&- 3<&-; return 0; }
    sleep 0.1
  done
  return 1
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server || return 1
  local port; port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$SERVICES_DIR/redis.pid" --logfile "$SERVICES_DIR/redis.log" >/dev/null || return 1
  wait_for_port "$port" || return 1
  SERVICES_PIDS+=("$(cat "$SERVICES_DIR/redis.pid")")
  export LLMPROXY_TEST_REDIS="127.0.0.1:$port"
  export LLMPROXY_TEST_REDIS_SERVER="$(command -v redis-server)"
  echo "   redis-server on 127.0.0.1:$port"
}

start_promtool() {
  command -v promtool >/dev/null || apt_install prometheus || return 1
  python3 -c "import yaml" 2>/dev/null || apt_install python3-yaml || return 1
  export LLMPROXY_TEST_PROMTOOL="$(command -v promtool)"
  echo "   promtool at $LLMPROXY_TEST_PROMTOOL"
}

# dynalite (npm, pinned in tests/scripts/package.json + package-lock.json) for the usage ledger's
# DynamoDB store. Only installed here: each test starts (and kills, and restarts) its own server.
start_dynalite() {
  local scripts_dir; scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  command -v node >/dev/null || apt_install nodejs npm || return 1
  if [[ ! -f "$scripts_dir/node_modules/dynalite/cli.js" ]]; then
    (cd "$scripts_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  fi
  export LLMPROXY_TEST_DYNALITE="$scripts_dir/node_modules/dynalite"
  echo "   dynalite at $LLMPROXY_TEST_DYNALITE ($(node -p 'require(process.argv[1]).version' "$LLMPROXY_TEST_DYNALITE/package.json"))"
}

services_start_all() {
  start_redis && start_promtool && start_dynalite
}

services_stop_all() {
  local pid
  for pid in "${SERVICES_PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null
  done
  SERVICES_PIDS=()
}
