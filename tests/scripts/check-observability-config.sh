#!/usr/bin/env bash
# Validates the observability configuration shipped in the repository:
#   config/prometheus/prometheus.yml         promtool check config (its rule file must resolve), and again with every
#                                            commented example block (#>>> ... #<<<) uncommented
#   config/prometheus/llmproxy-alerts.yml    promtool check rules, and promtool test rules llmproxy-alerts.test.yml
#   config/grafana/llmproxy-dashboard.json   parses, has the expected shape (schema version, variables, panel ids and
#                                            grid), and every query parses with promtool (as a temporary rules file)
# and, in the dashboard's and the rules' expressions, that every metric name is one the gateway exposes (the list
# below), every label used in a selector exists on that metric, every label grouped on or shown in a legend exists
# on a metric of the expression, rate()/increase() are applied to counters only and histogram_quantile() to buckets
# grouped by le.
#
# Usage: bash tests/scripts/check-observability-config.sh     (from anywhere; exits non-zero on any problem)
# Needs promtool (Debian package prometheus: apt-get update && apt-get install -y prometheus) and python3 with PyYAML
# (Debian package python3-yaml).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 2
PROM_DIR=config/prometheus
CONFIG=$PROM_DIR/prometheus.yml
RULES=$PROM_DIR/llmproxy-alerts.yml
RULES_TEST=$PROM_DIR/llmproxy-alerts.test.yml
DASHBOARD=config/grafana/llmproxy-dashboard.json

# The gateway's metrics as OpenTelemetry's Prometheus exporter names them: every series name a query may use, with its
# labels. The llmproxy_* and gen_ai_* ones (GatewayMetrics.cs, MeteringMetrics.cs, RateLimitMetrics.cs) are compared
# with a scrape of every instrument by tests/LlmProxy.Tests/Telemetry/MetricsDocumentationTests.cs; the http_* and
# dotnet_* ones (ASP.NET Core and .NET runtime instrumentation) with a real gateway's scrape after traffic by
# tests/LlmProxy.IntegrationTests/Telemetry/MetricsScrapeTests.cs.
GATEWAY_METRICS=$(cat <<'EOF'
llmproxy_requests_total                             counter    tenant model provider deployment status_class stream
llmproxy_request_duration_seconds_bucket            counter    tenant model provider status_class stream le
llmproxy_request_duration_seconds_sum               counter    tenant model provider status_class stream
llmproxy_request_duration_seconds_count             counter    tenant model provider status_class stream
llmproxy_requests_in_flight                         gauge
llmproxy_streams_in_flight                          gauge
gen_ai_client_token_usage_bucket                    counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model gen_ai_token_type tenant le
gen_ai_client_token_usage_sum                       counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model gen_ai_token_type tenant
gen_ai_client_token_usage_count                     counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model gen_ai_token_type tenant
gen_ai_server_time_to_first_token_seconds_bucket    counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model tenant le
gen_ai_server_time_to_first_token_seconds_sum       counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model tenant
gen_ai_server_time_to_first_token_seconds_count     counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model tenant
gen_ai_client_operation_duration_seconds_bucket     counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model error_type le
gen_ai_client_operation_duration_seconds_sum        counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model error_type
gen_ai_client_operation_duration_seconds_count      counter    gen_ai_operation_name gen_ai_provider_name gen_ai_request_model error_type
llmproxy_upstream_attempts_total                    counter    deployment outcome
llmproxy_upstream_duration_seconds_bucket           counter    deployment outcome le
llmproxy_upstream_duration_seconds_sum              counter    deployment outcome
llmproxy_upstream_duration_seconds_count            counter    deployment outcome
llmproxy_failovers_total                            counter    model from_deployment reason
llmproxy_deployment_breaker_state                   gauge      deployment
llmproxy_cache_requests_total                       counter    tenant model result
llmproxy_cache_store_errors_total                   counter    store operation
llmproxy_cache_store_duration_seconds_bucket        counter    store operation le
llmproxy_cache_store_duration_seconds_sum           counter    store operation
llmproxy_cache_store_duration_seconds_count         counter    store operation
llmproxy_cost_usd_total                             counter    tenant model provider
llmproxy_ratelimit_rejections_total                 counter    tenant limit
llmproxy_usage_ledger_queue_depth                   gauge
llmproxy_usage_ledger_spilled_total                 counter
llmproxy_usage_ledger_write_errors_total            counter    store
llmproxy_usage_ledger_dropped_total                 counter
llmproxy_pricing_missing_total                      counter    model
llmproxy_ratelimit_budget_remaining_usd             gauge      tenant period
llmproxy_ratelimit_store_failures_total             counter    operation
http_server_request_duration_seconds_bucket         counter    http_request_method http_response_status_code http_route network_protocol_version url_scheme le
http_server_request_duration_seconds_sum            counter    http_request_method http_response_status_code http_route network_protocol_version url_scheme
http_server_request_duration_seconds_count          counter    http_request_method http_response_status_code http_route network_protocol_version url_scheme
dotnet_process_memory_working_set_bytes             gauge
dotnet_process_cpu_time_seconds_total               counter    cpu_mode
dotnet_gc_collections_total                         counter    gc_heap_generation
dotnet_gc_last_collection_heap_size_bytes           gauge      gc_heap_generation
dotnet_gc_heap_total_allocated_bytes_total          counter
dotnet_gc_pause_time_seconds_total                  counter
dotnet_thread_pool_threads                          gauge
dotnet_thread_pool_queue_length                     gauge
dotnet_thread_pool_work_item_count_total            counter
EOF
)
# Series Prometheus writes itself for every target (not the gateway's): allowed in the alert rules only.
PROMETHEUS_SERIES="up"
# Labels Prometheus attaches to every scraped series: job and instance, and the Kubernetes example's relabelling.
TARGET_LABELS="job instance namespace pod"

problems=0
ok() { echo "  ok: $*"; }
problem() { echo "  FAILED: $*"; problems=$((problems + 1)); }

echo "== check-observability-config"

if ! command -v promtool >/dev/null 2>&1; then
    echo "  FAILED: promtool is not installed: apt-get update && apt-get install -y prometheus" >&2
    exit 127
fi
# shellcheck source=tests/scripts/python-yaml.sh
source "$ROOT/tests/scripts/python-yaml.sh"
for file in "$CONFIG" "$RULES" "$RULES_TEST" "$DASHBOARD"; do
    [[ -s "$file" ]] || problem "$file is missing or empty"
done
if [[ $problems -ne 0 ]]; then
    echo "check-observability-config: FAILED ($problems checks failed)"
    exit 1
fi

WORK=$(mktemp -d /tmp/check-observability.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Runs a command; on failure prints its output, indented.
run() {
    local what=$1; shift
    local output status=0
    output=$("$@" 2>&1) || status=$?
    if [[ $status -eq 0 ]]; then
        ok "$what"
    else
        problem "$what (exit $status):"
        printf '%s\n' "$output" | sed 's/^/      /'
    fi
}

echo "-- Prometheus configuration and rules ($(promtool --version 2>&1 | head -n 1))"
run "promtool check config $CONFIG (rule files resolved)" promtool check config --lint=all --lint-fatal "$CONFIG"

# The same file with the example blocks uncommented: strip the '#' that starts each line between '#>>>' and '#<<<'.
# A credentials_file must exist for promtool, so it points at an empty file here.
touch "$WORK/credentials"
cp "$RULES" "$WORK/"
awk -v creds="$WORK/credentials" '
    /^#>>>/ { inside = 1; next }
    /^#<<</ { inside = 0; next }
    inside { sub(/^#/, ""); if ($0 ~ /^[ ]*credentials_file:/) { sub(/credentials_file:.*/, "credentials_file: " creds) } }
    { print }
' "$CONFIG" > "$WORK/prometheus-examples.yml"
blocks=$(grep -c '^#>>>' "$CONFIG" || true)
if [[ "$blocks" -eq 0 ]]; then
    problem "$CONFIG has no example blocks (#>>> ... #<<<) to check"
else
    what="promtool check config with the $blocks example blocks of $CONFIG uncommented"
    status=0
    output=$(promtool check config --lint=all --lint-fatal "$WORK/prometheus-examples.yml" 2>&1) || status=$?
    if [[ $status -ne 0 ]] && grep -q 'field kubernetes_sd_configs not found' <<< "$output"; then
        # Debian builds Prometheus without Kubernetes discovery. Check the rest of the job (relabelling, authorization)
        # with a static target in place of the kubernetes_sd_configs section.
        awk '
            skip && match($0, /^ */) && RLENGTH > indent { next }
            { skip = 0 }
            /^ *kubernetes_sd_configs:/ {
                match($0, /^ */); indent = RLENGTH; skip = 1
                pad = sprintf("%" indent "s", "")
                print pad "static_configs:"; print pad "  - targets: [\"pod.invalid:8080\"]"
                next
            }
            { print }
        ' "$WORK/prometheus-examples.yml" > "$WORK/prometheus-examples-static.yml"
        what="$what (this promtool has no Kubernetes discovery: kubernetes_sd_configs replaced by a static target)"
        status=0
        output=$(promtool check config --lint=all --lint-fatal "$WORK/prometheus-examples-static.yml" 2>&1) || status=$?
    fi
    if [[ $status -eq 0 ]]; then
        ok "$what"
    else
        problem "$what (exit $status):"
        printf '%s\n' "$output" | sed 's/^/      /'
    fi
fi

run "promtool check rules $RULES" promtool check rules --lint=all --lint-fatal "$RULES"
run "promtool test rules $RULES_TEST" promtool test rules "$RULES_TEST"

echo "-- Metric names, labels and query structure (dashboard and rules)"
# The Python part writes every dashboard query, Grafana variables replaced by sample values, to a rules file for
# promtool, and exits non-zero on the problems it finds itself.
if GATEWAY_METRICS="$GATEWAY_METRICS" PROMETHEUS_SERIES="$PROMETHEUS_SERIES" TARGET_LABELS="$TARGET_LABELS" \
    "$PYTHON" - "$DASHBOARD" "$RULES" "$WORK/dashboard-queries.yml" <<'PY'
import json
import os
import re
import sys

import yaml

dashboard_path, rules_path, queries_out = sys.argv[1:4]

METRICS = {}   # name -> (type, set of labels)
for line in os.environ["GATEWAY_METRICS"].splitlines():
    fields = line.split()
    if fields:
        METRICS[fields[0]] = (fields[1], set(fields[2:]))
PROMETHEUS_SERIES = set(os.environ["PROMETHEUS_SERIES"].split())
TARGET_LABELS = set(os.environ["TARGET_LABELS"].split())

problems = []


def problem(message):
    problems.append(message)
    print(f"  FAILED: {message}")


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "atan2"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
               "quantile"}
RATE_FUNCTIONS = {"rate", "irate", "increase"}
TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@])
""", re.X)


def tokenize(expr):
    pos, tokens = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup not in ("ws", "comment"):
            tokens.append((m.lastgroup, m.group()))
    return tokens


def analyse(expr, where, allowed_extra=frozenset()):
    """Checks names and labels of one PromQL expression; returns nothing, records problems."""
    try:
        tokens = tokenize(expr)
    except ValueError as error:
        problem(f"{where}: {error}")
        return set()
    metrics = []          # (name, selector labels, enclosing functions)
    grouping = []         # (keyword, labels)
    stack = []            # one entry per open '(' : the function name, or None
    quantile_calls = []   # for each histogram_quantile(: {"metrics": [...], "le": bool}
    pending = None        # an aggregation operator waiting for its '(' (after a 'by (...)' clause)
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "ident" and text in GROUPING:
            i += 1
            labels = []
            if i < len(tokens) and tokens[i][1] == "(":
                i += 1
                while i < len(tokens) and tokens[i][1] != ")":
                    if tokens[i][0] == "ident":
                        labels.append(tokens[i][1])
                    i += 1
                i += 1
            grouping.append((text, labels))
            for call in quantile_calls:
                if call["open"] and text == "by" and "le" in labels:
                    call["le"] = True
            continue
        if kind == "ident" and text in AGGREGATORS and nxt in ("(", "by", "without"):
            pending = text
            i += 1
            continue
        if kind == "ident" and nxt == "(" and text.lower() not in KEYWORDS:
            stack.append(text)
            if text == "histogram_quantile":
                quantile_calls.append({"metrics": [], "le": False, "open": True})
            i += 2
            continue
        if text == "(":
            stack.append(pending)
            pending = None
        elif text == ")":
            if stack:
                closed = stack.pop()
                if closed == "histogram_quantile":
                    call = next(c for c in reversed(quantile_calls) if c["open"])
                    call["open"] = False
        elif text == "[":
            while i < len(tokens) and tokens[i][1] != "]":
                i += 1
        elif kind == "ident" and text.lower() not in KEYWORDS:
            labels = []
            if nxt == "{":
                i += 2
                while i < len(tokens) and tokens[i][1] != "}":
                    if tokens[i][0] == "ident" and i + 1 < len(tokens) and tokens[i + 1][1] in ("=", "!=", "=~", "!~"):
                        labels.append(tokens[i][1])
                    i += 1
            metrics.append((text, labels, [f for f in stack if f]))
            for call in quantile_calls:
                if call["open"]:
                    call["metrics"].append(text)
        elif text == "{":
            problem(f"{where}: a selector without a metric name ({{...}}) cannot be checked; name the metric")
        i += 1

    known_labels = set(TARGET_LABELS)
    for name, labels, functions in metrics:
        if name in METRICS:
            kind, metric_labels = METRICS[name]
        elif name in allowed_extra:
            kind, metric_labels = "gauge", set()
        else:
            problem(f"{where}: unknown metric {name!r} (not exposed by the gateway)")
            continue
        known_labels |= metric_labels
        for label in labels:
            if label not in metric_labels and label not in TARGET_LABELS and label != "__name__":
                problem(f"{where}: {name} has no label {label!r} (it has: {', '.join(sorted(metric_labels)) or 'none'})")
        innermost = next((f for f in reversed(functions) if f in RATE_FUNCTIONS | {"histogram_quantile"}), None)
        if innermost in RATE_FUNCTIONS and kind != "counter":
            problem(f"{where}: {innermost}() over {name}, which is a {kind}, not a counter")
    for keyword, labels in grouping:
        for label in labels:
            if label not in known_labels and label != "le":
                problem(f"{where}: '{keyword} ({label})': no metric of the expression has a label {label!r}")
            if label == "le" and not any(n.endswith("_bucket") for n, _, _ in metrics):
                problem(f"{where}: '{keyword} (le)' without a _bucket series")
    for call in quantile_calls:
        if not call["metrics"] or not all(m.endswith("_bucket") for m in call["metrics"]):
            problem(f"{where}: histogram_quantile() over {call['metrics'] or 'nothing'}: it needs _bucket series")
        elif not call["le"]:
            problem(f"{where}: histogram_quantile() whose buckets are not summed 'by (le, ...)'")
    if not metrics:
        problem(f"{where}: no metric in the expression")
    return known_labels


# ------------------------------------------------------------------ dashboard
try:
    with open(dashboard_path, encoding="utf-8") as f:
        dashboard = json.load(f)
except (OSError, ValueError) as error:
    problem(f"{dashboard_path} does not parse as JSON: {error}")
    sys.exit(1)
print(f"  ok: {dashboard_path} parses as JSON")

if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 39:
    problem(f"schemaVersion is {dashboard.get('schemaVersion')!r}; 39 or later expected")
for key in ("title", "uid"):
    if not dashboard.get(key):
        problem(f"the dashboard has no {key}")

variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
ds = variables.get("datasource")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    problem("no 'datasource' template variable of type datasource with query 'prometheus'")
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s", "__range_ms", "__interval_ms"}
SAMPLE = {"__rate_interval": "1m", "__interval": "1m", "__interval_ms": "60000", "__range": "6h", "__range_s": "21600",
          "__range_ms": "21600000"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')


def grafana_to_promql(expr, where):
    """Checks the Grafana variables of an expression and replaces them with sample values."""
    outside_strings = STRINGS.sub('""', expr)
    for m in VARIABLE.finditer(outside_strings):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in ("__rate_interval", "__interval", "__range"):
            problem(f"{where}: ${name} is used outside a string: its value would be pasted into the query")
    for m in VARIABLE.finditer(expr):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in BUILTIN_VARIABLES and name not in variables:
            problem(f"{where}: ${name} is not a template variable of the dashboard")
    return VARIABLE.sub(lambda m: SAMPLE.get(m.group(1) or m.group(2) or m.group(3), "sample"), expr)


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*$", re.S)
for name in ("tenant", "model", "deployment"):
    if name not in variables:
        problem(f"no '{name}' template variable")
queries = []   # (where, promql)
for name, variable in variables.items():
    if variable.get("type") != "query":
        continue
    where = f"variable ${name}"
    if variable.get("datasource", {}).get("uid") != "${datasource}":
        problem(f"{where}: its datasource is not ${{datasource}}")
    query = variable.get("query")
    query = query.get("query") if isinstance(query, dict) else query
    m = LABEL_VALUES.match(query or "")
    if not m or not m.group(1):
        problem(f"{where}: expected label_values(<metric selector>, <label>), got {query!r}")
        continue
    selector, label = m.group(1), m.group(2)
    promql = grafana_to_promql(selector, where)
    known = analyse(promql, where)
    if label not in known:
        problem(f"{where}: label_values over {label!r}, which the selector's metric does not have")
    queries.append((where, promql))


def walk(panels):
    for panel in panels:
        yield panel
        yield from walk(panel.get("panels", []))


def overlaps(a, b):
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


ids = {}
panel_count = 0
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
for panel in walk(dashboard.get("panels", [])):
    title = panel.get("title", "?")
    pid = panel.get("id")
    where = f"panel {pid} {title!r}"
    if pid in ids:
        problem(f"{where}: id {pid} is also used by {ids[pid]!r}")
    ids[pid] = title
    grid = panel.get("gridPos", {})
    if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")) or grid["x"] < 0 or grid["x"] + grid["w"] > 24:
        problem(f"{where}: gridPos {grid} is not within the 24 columns")
    if panel.get("type") == "row":
        continue
    panel_count += 1
    if panel.get("datasource", {}).get("uid") != "${datasource}":
        problem(f"{where}: its datasource is not ${{datasource}}")
    targets = panel.get("targets", [])
    if not targets:
        problem(f"{where}: no queries")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs):
        problem(f"{where}: refIds repeat: {refs}")
    for target in targets:
        twhere = f"{where} query {target.get('refId')}"
        expr = target.get("expr", "")
        if not expr.strip():
            problem(f"{twhere}: empty expression")
            continue
        if target.get("datasource", {}).get("uid") not in (None, "${datasource}"):
            problem(f"{twhere}: its datasource is not ${{datasource}}")
        promql = grafana_to_promql(expr, twhere)
        known = analyse(promql, twhere)
        for label in LEGEND_LABEL.findall(target.get("legendFormat", "")):
            if label not in known:
                problem(f"{twhere}: legend shows {{{{{label}}}}}, a label no metric of the query has")
        queries.append((twhere, promql))


def check_grid(panels, scope):
    placed = []
    for panel in panels:
        grid = panel.get("gridPos")
        if not grid:
            continue
        for other in placed:
            if overlaps(grid, other.get("gridPos")):
                problem(f"{scope}: panels {other.get('id')} and {panel.get('id')} overlap")
        placed.append(panel)
        if panel.get("type") == "row" and panel.get("collapsed"):
            check_grid(panel.get("panels", []), f"row {panel.get('title')!r}")


check_grid(dashboard.get("panels", []), "dashboard")
if panel_count == 0:
    problem("the dashboard has no panels")

with open(queries_out, "w", encoding="utf-8") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"dashboard:query_{n}", "expr": q} for n, (_, q) in enumerate(queries)]}]}, f, sort_keys=False)
with open(queries_out + ".map", "w", encoding="utf-8") as f:
    for n, (where, q) in enumerate(queries):
        f.write(f"dashboard:query_{n}\t{where}\n")

# ------------------------------------------------------------------ rules
with open(rules_path, encoding="utf-8") as f:
    rules = yaml.safe_load(f)
rule_count = 0
for group in rules.get("groups", []):
    for rule in group.get("rules", []):
        rule_count += 1
        name = rule.get("alert") or rule.get("record")
        analyse(rule.get("expr", ""), f"rule {name}", allowed_extra=PROMETHEUS_SERIES)

if not problems:
    print(f"  ok: {panel_count} panels, {len(queries)} dashboard queries (variables included) and {rule_count} rules"
          f" use only the gateway's metrics and their labels")
sys.exit(1 if problems else 0)
PY
then
    :
else
    problems=$((problems + 1))
fi

echo "-- Dashboard queries parsed by promtool"
if [[ -s "$WORK/dashboard-queries.yml" ]]; then
    count=$(grep -c 'record:' "$WORK/dashboard-queries.yml" || true)
    status=0
    output=$(promtool check rules --lint=none "$WORK/dashboard-queries.yml" 2>&1) || status=$?
    if [[ $status -eq 0 ]]; then
        ok "$count dashboard queries parse (promtool check rules)"
    else
        problem "promtool rejects dashboard queries (exit $status):"
        printf '%s\n' "$output" | sed 's/^/      /'
        echo "      where each dashboard:query_N comes from:"
        grep -o 'dashboard:query_[0-9]*' <<< "$output" | sort -u | while read -r record; do
            grep -P "^$record\t" "$WORK/dashboard-queries.yml.map" | sed 's/^/        /'
        done
    fi
else
    problem "no dashboard queries were written for promtool"
fi

if [[ $problems -ne 0 ]]; then
    echo "check-observability-config: FAILED ($problems checks failed)"
    exit 1
fi
echo "check-observability-config: OK"
