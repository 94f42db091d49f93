#!/usr/bin/env bash
# Sourced by the config check scripts: sets PYTHON to a python3 that can import PyYAML, or fails the check with the
# command that installs it (tests/run.sh installs it on a fresh machine).
PYTHON=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' >/dev/null 2>&1; then
        PYTHON=$candidate
        break
    fi
done
if [[ -z "$PYTHON" ]]; then
    echo "  FAILED: python3 with PyYAML is needed: apt-get update && apt-get install -y python3-yaml" >&2
    exit 127
fi
