#!/usr/bin/env bash
# Gateway overhead benchmark: the same bounded load, on loopback, through the simulator directly (the floor), a bare
# YARP pass-through, LlmProxy with every feature on (cache miss; cache hit with the memory and the Redis store;
# streaming) and the Portkey gateway, each a process of its own, in interleaved rounds. Prints the machine, one table
# per kind of load, 1,000 concurrent streams' RSS, and where the performance targets stand. Figures only: never pass/fail.
#
# Usage: bash tests/LlmProxy.Benchmarks/overhead/run.sh [--duration 6s] [--connections 32] [--rounds 2]
#          [--latency-connections 1] [--stream-connections 8] [--hold-streams 1000] [--upstream-latency-ms 1]
#          [--chunk-delay-ms 1] [--threads 1] [--no-portkey] [--save]
# --save also writes tests/LlmProxy.Benchmarks/results/overhead-<UTC date>.md. The defaults take about 4-5 minutes.
# Installs what is missing (wrk and redis-server with apt-get when running as root; Portkey with npm ci), binds only
# 127.0.0.1, and stops every process it started, however it ends.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/tests/LlmProxy.Benchmarks/overhead"

need() { # <command> <Debian package>
  command -v "$1" >/dev/null && return 0
  if [[ "$(id -u)" -ne 0 ]]; then echo "$1 is missing: apt-get install -y $2" >&2; exit 1; fi
  echo "== installing $2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need redis-server redis-server
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed for the Portkey gateway" >&2; exit 1; }

# Portkey, exactly as pinned by package-lock.json; reinstalled when the lock file changed.
if [[ ! -f "$HERE/node_modules/.package-lock.json" || "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
  echo "== npm ci (Portkey gateway)" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "== building (Release)" >&2
BUILD_LOG="$(mktemp)"
if ! dotnet build "$ROOT/tests/LlmProxy.Benchmarks" -c Release --nologo -v quiet >"$BUILD_LOG" 2>&1; then
  tail -n 30 "$BUILD_LOG" >&2; rm -f "$BUILD_LOG"; exit 1
fi
rm -f "$BUILD_LOG"

# The benchmark runs in a process group of its own; whatever happens to it (an error, Ctrl-C, a kill of this script),
# the trap ends that group, so no simulator, gateway, redis-server or node process outlives the run.
GROUP=""
cleanup() {
  if [[ -n "$GROUP" ]]; then
    kill -TERM -- "-$GROUP" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$GROUP" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$GROUP" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$ROOT"
setsid dotnet "$ROOT/tests/LlmProxy.Benchmarks/bin/Release/net10.0/LlmProxy.Benchmarks.dll" overhead "$@" &
GROUP=$!
set +e
wait "$GROUP"
STATUS=$?
set -e
exit "$STATUS"
