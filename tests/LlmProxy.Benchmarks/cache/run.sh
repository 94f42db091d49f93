#!/usr/bin/env bash
# Response cache benchmark: latency and throughput of cache hits through the gateway (memory and Redis stores)
# against cache misses, the gateway without the cache, and the upstream (simulator) called directly, all measured
# in this run on loopback. Prints p50/p99 at one connection, requests/s at $CONNECTIONS connections, and ratios
# against the direct-upstream baseline. Figures only: never pass/fail.
#
# Usage: bash tests/LlmProxy.Benchmarks/cache/run.sh          (DURATION=5 CONNECTIONS=16 by default; needs wrk and redis-server,
#                                               installed with apt-get when missing and running as root)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/tests/LlmProxy.Benchmarks/cache"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-16}"
WORK="$(mktemp -d /tmp/llmproxy-cache-bench.XXXXXX)"
HOST_PID=""
REDIS_PID=""

cleanup() {
  if [[ -n "$HOST_PID" ]]; then kill "$HOST_PID" 2>/dev/null; wait "$HOST_PID" 2>/dev/null; fi
  if [[ -n "$REDIS_PID" ]]; then
    kill "$REDIS_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need() {
  command -v "$1" >/dev/null && return 0
  [[ "$(id -u)" -eq 0 ]] || { echo "$1 is missing: apt-get install -y $2" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1
}
need wrk wrk
need redis-server redis-server

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

echo "== building the benchmark host (Release)"
dotnet build "$HERE/CacheBench" -c Release --nologo -v quiet >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log"; exit 1; }

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" >/dev/null
for _ in $(seq 50); do [[ -s "$WORK/redis.pid" ]] && break; sleep 0.1; done
REDIS_PID="$(cat "$WORK/redis.pid")"

dotnet "$HERE/CacheBench/bin/Release/net10.0/CacheBench.dll" --redis "127.0.0.1:$REDIS_PORT" --max-seconds 900 >"$WORK/host.out" 2>&1 &
HOST_PID=$!
for _ in $(seq 300); do grep -q '^READY' "$WORK/host.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^READY' "$WORK/host.out" || { cat "$WORK/host.out"; echo "benchmark host did not start" >&2; exit 1; }
SIM="$(sed -n 's/^SIMULATOR=//p' "$WORK/host.out")"
MEMORY="$(sed -n 's/^MEMORY=//p' "$WORK/host.out")"
REDIS="$(sed -n 's/^REDIS=//p' "$WORK/host.out")"
KEY="$(sed -n 's/^KEY=//p' "$WORK/host.out")"

to_ms() { # wrk prints 245.00us, 1.23ms or 1.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

# run_wrk <base url> <key|-> <model> <same|unique> <stream> <threads> <connections> <duration>
run_wrk() {
  wrk -t"$6" -c"$7" -d"$8"s --latency -s "$HERE/chat.lua" "$1/v1/chat/completions" -- "$2" "$3" "$4" "$5" "$RANDOM$RANDOM" 2>&1
}

gateway_times() { # in-gateway times since the last call: "p50 p99" of hits or of the other requests
  [[ "$1" == "$SIM" ]] && { echo "- -"; return; }
  curl -s "$1/_bench/times" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k "_p50" { a = $2 } $1 == k "_p99" { b = $2 } END { print a, b }'
}

RESULTS=()
# scenario <label> <base url> <key|-> <model> <same|unique> <stream> <hit|other>
scenario() {
  local label="$1"
  run_wrk "$2" "$3" "$4" "$5" "$6" 2 4 2 >/dev/null # warm-up (JIT, connections, the entry for hits)
  local latency throughput p50 p99 rps errors inside
  [[ "$2" != "$SIM" ]] && curl -s "$2/_bench/times" >/dev/null
  latency="$(run_wrk "$2" "$3" "$4" "$5" "$6" 1 1 "$DURATION")"
  inside="$(gateway_times "$2" "$7")"
  throughput="$(run_wrk "$2" "$3" "$4" "$5" "$6" 2 "$CONNECTIONS" "$DURATION")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$latency")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$latency")")"
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$throughput")"
  errors="$( (grep -h 'Non-2xx' <<<"$latency$throughput" || true) | awk '{ s += $NF } END { print s + 0 }')"
  RESULTS+=("$label|$p50|$p99|$rps|$errors|${inside% *}|${inside#* }")
  printf '   %-34s p50 %8s ms  p99 %8s ms  %7s req/s  in-gateway p50 %s p99 %s ms%s\n' "$label" "$p50" "$p99" "$rps" "${inside% *}" "${inside#* }" \
    "$([[ "$errors" != 0 ]] && echo "  ($errors non-2xx!)")"
}

cache_header() { # what the cache says about the request a scenario sends
  curl -s -o /dev/null -D - -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"model\":\"cached\",\"messages\":[{\"role\":\"user\",\"content\":\"benchmark prompt\"}]$2}" "$1/v1/chat/completions" \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "x-llmproxy-cache" { print $2 }'
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (other processes share these cores)"
echo "== scenarios (latency: 1 connection, ${DURATION}s; throughput: $CONNECTIONS connections, ${DURATION}s; non-streamed unless marked)"
scenario "upstream directly (baseline)" "$SIM" - cached same false other
scenario "gateway, caching off" "$MEMORY" "$KEY" plain same false other
scenario "gateway, memory store, miss" "$MEMORY" "$KEY" cached unique false other
cache_header "$MEMORY" "" >/dev/null
echo "   (memory hit check: x-llmproxy-cache=$(cache_header "$MEMORY" ""))"
scenario "gateway, memory store, hit" "$MEMORY" "$KEY" cached same false hit
scenario "gateway, memory store, stream hit" "$MEMORY" "$KEY" cached same true hit
scenario "gateway, redis store, miss" "$REDIS" "$KEY" cached unique false other
cache_header "$REDIS" "" >/dev/null
sleep 0.2
echo "   (redis hit check: x-llmproxy-cache=$(cache_header "$REDIS" ""))"
scenario "gateway, redis store, hit" "$REDIS" "$KEY" cached same false hit

echo
echo "== summary (ratios against the upstream called directly, measured above)"
IFS='|' read -r _ base50 base99 baserps _ <<<"${RESULTS[0]}"
printf '%-34s %9s %9s %9s %8s %8s %8s %12s %12s\n' scenario "p50 ms" "p99 ms" "req/s" "p50 x" "p99 x" "req/s x" "gw p50 ms" "gw p99 ms"
for row in "${RESULTS[@]}"; do
  IFS='|' read -r label p50 p99 rps errors gw50 gw99 <<<"$row"
  printf '%-34s %9s %9s %9s %8s %8s %8s %12s %12s\n' "$label" "$p50" "$p99" "$rps" \
    "$(awk -v a="$p50" -v b="$base50" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$p99" -v b="$base99" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$rps" -v b="$baserps" 'BEGIN { printf "%.2f", a / b }')" "$gw50" "$gw99"
done
echo
echo "Target: memory-store hit p99 < 0.5 ms on loopback. p50/p99 are client-observed at one connection (wrk on the same"
echo "machine as the gateway and the simulator, so scheduling delays of a busy machine land in p99); 'gw' columns are the"
echo "time inside the gateway (endpoint start to end of response) of the same requests; req/s at $CONNECTIONS connections."
