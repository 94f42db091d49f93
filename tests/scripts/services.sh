#!/usr/bin/env bash
# Real servers for the tests, installed if missing and bound to 127.0.0.1 on free ports.
# Sourced by tests/run.sh; exports the addresses the tests read:
#   LLMPROXY_TEST_REDIS      host:port of a redis-server
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

services_start_all() {
  start_redis && start_promtool
}

services_stop_all() {
  local pid
  for pid in "${SERVICES_PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null
  done
  SERVICES_PIDS=()
}
