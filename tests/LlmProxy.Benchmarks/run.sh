#!/usr/bin/env bash
# Runs one benchmark in Release and prints its figures. Usage: bash tests/LlmProxy.Benchmarks/run.sh failover [options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dotnet build "$ROOT/tests/LlmProxy.Benchmarks" -c Release --nologo -v quiet >/dev/null
exec dotnet "$ROOT/tests/LlmProxy.Benchmarks/bin/Release/net10.0/LlmProxy.Benchmarks.dll" "$@"
