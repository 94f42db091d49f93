#!/usr/bin/env bash
# Checks the Kubernetes manifests in config/kubernetes without a cluster:
#   - every manifest parses, kustomization.yaml lists them all, and (when kubectl is installed) `kubectl kustomize`
#     renders the whole set;
#   - the Deployment: probes, resources, the Secret it references, the config volume mounted as a directory (never a
#     subPath, which the kubelet does not update), LLMPROXY_CONFIG and the pricing file inside that directory and
#     provided by a ConfigMap key, the polling file watcher on, the ports probes and the Service name;
#   - consistency: the rate limiter's ReplicaCount equals the HPA's maxReplicas, the HPA scales this Deployment,
#     terminationGracePeriodSeconds exceeds preStop + ShutdownGracePeriod + ShutdownFlushTimeout, and the pricing.json
#     of the kustomization is the one the image carries (config/pricing.json);
#   - the management listener: the gateway (image defaults, config/production-defaults.json, under the ConfigMap's
#     settings) has a management port (LlmProxy:Management:Port) it listens on (Urls), the container declares it, the
#     probes and the prometheus.io annotations use it, and the Service exposes the public port(s) only, never it.
#
# Usage: bash tests/scripts/check-kubernetes-manifests.sh [manifest directory]
#        (from anywhere; the directory defaults to config/kubernetes; exits non-zero on any problem)
# Needs python3 with PyYAML (Debian package python3-yaml); kubectl is optional.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 2
DIR="${1:-config/kubernetes}"

echo "== check-kubernetes-manifests"
# shellcheck source=tests/scripts/python-yaml.sh
source "$ROOT/tests/scripts/python-yaml.sh"

problems=0
if command -v kubectl >/dev/null 2>&1; then
    if output=$(kubectl kustomize "$DIR" 2>&1); then
        echo "  ok: kubectl kustomize $DIR renders ($(grep -c '^kind:' <<< "$output") objects)"
    else
        echo "  FAILED: kubectl kustomize $DIR:"
        printf '%s\n' "$output" | sed 's/^/      /'
        problems=$((problems + 1))
    fi
else
    echo "  skipped: kubectl is not installed, so the kustomization is not rendered (the checks below still run)"
fi

"$PYTHON" - "$DIR" <<'PY' || problems=$((problems + 1))
import json
import os
import posixpath
import re
import sys

import yaml

directory = sys.argv[1]
problems = []


def problem(message):
    problems.append(message)
    print(f"  FAILED: {message}")


def ok(message):
    print(f"  ok: {message}")


def duration_seconds(text, default):
    """A .NET TimeSpan as written in configuration ("00:01:00", "1.00:00:00", "00:00:00.500")."""
    if text is None:
        return default
    m = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", str(text))
    if not m:
        problem(f"cannot read the duration {text!r}")
        return default
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# ---------------------------------------------------------------- files and kustomization
objects = {}
for name in sorted(os.listdir(directory)):
    if not name.endswith((".yaml", ".yml")):
        continue
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            documents = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as error:
        problem(f"{name} does not parse: {error}")
        continue
    for document in documents:
        objects.setdefault(document.get("kind"), []).append((name, document))
ok(f"{sum(len(v) for v in objects.values())} documents parse")

kustomization = next((d for _, d in objects.pop("Kustomization", [])), None)
if kustomization is None:
    problem("kustomization.yaml has no Kustomization")
    kustomization = {}
listed = set(kustomization.get("resources", []))
manifests = {n for docs in objects.values() for n, _ in docs}
for missing in sorted(manifests - listed):
    problem(f"{missing} is not listed in kustomization.yaml resources")
for absent in sorted(listed - manifests):
    problem(f"kustomization.yaml lists {absent}, which does not exist")

# ConfigMaps, from manifests and from the generator: name -> {key: content}.
config_maps = {d["metadata"]["name"]: dict(d.get("data", {})) for _, d in objects.get("ConfigMap", [])}
for generator in kustomization.get("configMapGenerator", []):
    data = {}
    for entry in generator.get("files", []):
        key, _, path = entry.partition("=") if "=" in entry else (posixpath.basename(entry), "", entry)
        try:
            with open(os.path.join(directory, path), encoding="utf-8") as f:
                data[key] = f.read()
        except OSError as error:
            problem(f"configMapGenerator {generator.get('name')}: {error}")
    config_maps[generator.get("name")] = data
if kustomization.get("configMapGenerator") and not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash"):
    problem("generated ConfigMaps get a name suffix, so an edit rolls the pods instead of reloading: set generatorOptions.disableNameSuffixHash")


def single(kind):
    found = objects.get(kind, [])
    if len(found) != 1:
        problem(f"expected one {kind}, found {len(found)}")
        return {}
    return found[0][1]


deployment, service, hpa = single("Deployment"), single("Service"), single("HorizontalPodAutoscaler")
secrets = {d["metadata"]["name"] for _, d in objects.get("Secret", [])}

# ---------------------------------------------------------------- Deployment
pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
containers = pod.get("containers", [])
container = containers[0] if containers else {}
name = container.get("name", "?")
for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
    if probe not in container:
        problem(f"container {name} has no {probe}")
resources = container.get("resources", {})
if not resources.get("requests", {}).get("cpu") or not resources.get("requests", {}).get("memory") or not resources.get("limits", {}).get("memory"):
    problem(f"container {name} needs cpu and memory requests and a memory limit")
port_names = {p.get("name") for p in container.get("ports", [])}
for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
    port = container.get(probe, {}).get("httpGet", {}).get("port")
    if isinstance(port, str) and port not in port_names:
        problem(f"{probe} uses port {port!r}, which the container does not name")
for source in container.get("envFrom", []):
    ref = source.get("secretRef", {}).get("name")
    if ref and ref not in secrets:
        problem(f"envFrom references Secret {ref!r}, which no manifest defines")

env = {e["name"]: e.get("value") for e in container.get("env", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = container.get("volumeMounts", [])


def config_maps_of(volume):
    if "configMap" in volume:
        return [volume["configMap"].get("name")]
    return [s["configMap"].get("name") for s in volume.get("projected", {}).get("sources", []) if "configMap" in s]


def file_from_config_map(path, what):
    """Checks that path lies in a directory mount of a ConfigMap volume and that a ConfigMap has that key."""
    if not path:
        problem(f"{what} is not set in the Deployment")
        return None
    for mount in mounts:
        root = mount.get("mountPath", "").rstrip("/")
        if not path.startswith(root + "/"):
            continue
        volume = volumes.get(mount.get("name"), {})
        names = config_maps_of(volume)
        if not names:
            continue
        if "subPath" in mount:
            problem(f"{what}: the volume {mount['name']} is mounted with subPath, which the kubelet never updates")
        key = path[len(root) + 1:]
        for config_map in names:
            if config_map not in config_maps:
                problem(f"{what}: volume {mount['name']} uses ConfigMap {config_map!r}, which is neither a manifest nor generated")
            elif key in config_maps[config_map]:
                return config_maps[config_map][key]
        problem(f"{what}: no ConfigMap of volume {mount['name']} has the key {key!r}")
        return None
    problem(f"{what}: {path} is not inside a ConfigMap volume mount")
    return None


for mount in mounts:
    if "subPath" in mount and config_maps_of(volumes.get(mount.get("name"), {})):
        problem(f"volume {mount['name']} (a ConfigMap) is mounted with subPath: the kubelet never updates it, so edits would not reload")

configuration_text = file_from_config_map(env.get("LLMPROXY_CONFIG") or "", "LLMPROXY_CONFIG")
pricing_text = file_from_config_map(env.get("LlmProxy__Metering__PricingFile") or "", "LlmProxy__Metering__PricingFile")
if env.get("DOTNET_USE_POLLING_FILE_WATCHER") != "true":
    problem("DOTNET_USE_POLLING_FILE_WATCHER must be \"true\": the inotify watcher misses the kubelet's ..data symlink swap")

configuration = {}
top_level = {}
if configuration_text is not None:
    try:
        top_level = json.loads(configuration_text)
        configuration = top_level.get("LlmProxy", {})
        ok("the gateway configuration in the ConfigMap parses as JSON")
    except ValueError as error:
        problem(f"the gateway configuration in the ConfigMap is not JSON: {error}")
if pricing_text is not None:
    try:
        json.loads(pricing_text)
    except ValueError as error:
        problem(f"the pricing file in the ConfigMap is not JSON: {error}")
    with open("config/pricing.json", encoding="utf-8") as f:
        if f.read() != pricing_text:
            problem(f"{directory}/pricing.json differs from config/pricing.json (the image's prices): cp config/pricing.json {directory}/")

# ---------------------------------------------------------------- consistency
grace = duration_seconds(configuration.get("ShutdownGracePeriod"), 30)
flush = duration_seconds(configuration.get("ShutdownFlushTimeout"), 10)
pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
termination = pod.get("terminationGracePeriodSeconds", 30)
if termination <= pre_stop + grace + flush:
    problem(f"terminationGracePeriodSeconds {termination} must exceed preStop {pre_stop} + ShutdownGracePeriod {grace:g} + ShutdownFlushTimeout {flush:g}")
else:
    ok(f"terminationGracePeriodSeconds {termination} > preStop {pre_stop} + grace {grace:g} + flush {flush:g}")

limits = configuration.get("RateLimits", {})
max_replicas = hpa.get("spec", {}).get("maxReplicas")
if limits.get("Store") == "redis":
    replica_count = limits.get("Redis", {}).get("ReplicaCount", 1)
    if replica_count != max_replicas:
        problem(f"RateLimits:Redis:ReplicaCount is {replica_count} but the HPA scales to {max_replicas}: the fallback during a Redis"
                f" outage divides each limit by ReplicaCount, so it must count the most replicas there can be")
    else:
        ok(f"RateLimits:Redis:ReplicaCount {replica_count} = HPA maxReplicas")
target = hpa.get("spec", {}).get("scaleTargetRef", {})
if target.get("kind") != "Deployment" or target.get("name") != deployment.get("metadata", {}).get("name"):
    problem(f"the HPA scales {target}, not the Deployment")
if hpa.get("spec", {}).get("minReplicas", 1) > (max_replicas or 0):
    problem("the HPA's minReplicas exceeds maxReplicas")
if "replicas" in deployment.get("spec", {}):
    problem("the Deployment sets replicas, which every kubectl apply would reset under the HPA")

labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
selector = service.get("spec", {}).get("selector", {})
if not selector or any(labels.get(k) != v for k, v in selector.items()):
    problem(f"the Service selector {selector} does not match the pod labels {labels}")
for port in service.get("spec", {}).get("ports", []):
    if isinstance(port.get("targetPort"), str) and port["targetPort"] not in port_names:
        problem(f"the Service targets port {port['targetPort']!r}, which the container does not name")

# ---------------------------------------------------------------- management listener
# The image's defaults, then the ConfigMap's file over them (environment variables in the Deployment are not read here).
with open("config/production-defaults.json", encoding="utf-8") as f:
    image_defaults = json.load(f)
urls = top_level.get("Urls", image_defaults.get("Urls", ""))
management_port = configuration.get("Management", {}).get("Port", image_defaults.get("LlmProxy", {}).get("Management", {}).get("Port"))
listened = set()
for url in filter(None, (u.strip() for u in urls.split(";"))):
    m = re.fullmatch(r"\w+://[^/]*:(\d+)/?", url)
    if m:
        listened.add(int(m.group(1)))
    else:
        problem(f"cannot read the port of {url!r} in Urls")
container_ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}


def port_number(port):
    return container_ports.get(port) if isinstance(port, str) else port


before = len(problems)
if not isinstance(management_port, int):
    problem("the gateway has no management port (LlmProxy:Management:Port): /metrics, /readyz and /admin/* would be served on the public port")
else:
    public_ports = listened - {management_port}
    if management_port not in listened:
        problem(f"the gateway does not listen on its management port {management_port} (Urls: {urls!r})")
    if management_port not in container_ports.values():
        problem(f"the container does not declare the management port {management_port}")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = port_number(container.get(probe, {}).get("httpGet", {}).get("port"))
        if port != management_port:
            problem(f"{probe} uses port {port}, not the management port {management_port}")
    annotations = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    if annotations.get("prometheus.io/port") != str(management_port):
        problem(f"the prometheus.io/port annotation is {annotations.get('prometheus.io/port')!r}, not the management port {management_port}")
    if annotations.get("prometheus.io/path", "/metrics") != configuration.get("Metrics", {}).get("Path", "/metrics"):
        problem("the prometheus.io/path annotation is not the metrics path")
    exposed = {port_number(p.get("targetPort", p.get("port"))) for p in service.get("spec", {}).get("ports", [])}
    if management_port in exposed:
        problem(f"the Service exposes the management port {management_port}: metrics, readiness details and the admin API would be reachable through it")
    if not exposed or not exposed <= public_ports:
        problem(f"the Service targets ports {sorted(map(str, exposed))}; it must target the public port(s) {sorted(public_ports)} only")
    if len(problems) == before:
        ok(f"management port {management_port}: probes and prometheus.io annotations use it, the Service exposes only {', '.join(map(str, sorted(exposed)))}")

if not problems:
    ok("Deployment, Service, HPA, ConfigMaps and Secret reference are consistent")
sys.exit(1 if problems else 0)
PY

if [[ $problems -ne 0 ]]; then
    echo "check-kubernetes-manifests: FAILED"
    exit 1
fi
echo "check-kubernetes-manifests: OK"
