#!/usr/bin/env bash
# Checks the deployment files without a container engine or a cluster, and writes the sorted
# list of metric names the Grafana dashboard's queries use (to FILE, or to stdout).
#
#   bash deploy/check-deploy.sh [FILE]
#
# Checks: promtool check config (Prometheus); the dashboard parses as JSON, its panels use the
# provisioned data source, and every query parses as PromQL (promtool check rules); yamllint
# (deploy/.yamllint, warnings fail) over the compose file, the Grafana provisioning, the Prometheus
# configuration and every Kubernetes manifest; the Dockerfiles call the scripts CI calls
# (install-deps.sh, build.sh) and declare the ports, volumes, user and health check; the compose
# file's services, mounts and GPU reservation; the manifests' kinds, gRPC probes and scrape
# annotations; every hier-server / hier-train / hier flag these files pass exists in the sources;
# every metric the dashboard uses is one the server's sources define.
# Progress goes to stderr; the exit status is non-zero when any check fails, each failure named.
# Needs promtool (Debian: prometheus), yamllint (yamllint, which brings python3-yaml), python3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$root/deploy"
out="${1:-}"
case "$out" in
  -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
if [ $# -gt 1 ]; then echo "usage: bash deploy/check-deploy.sh [FILE]" >&2; exit 2; fi

failures=()
say() { echo "check-deploy: $*" >&2; }
fail() { say "FAILED: $*"; failures+=("$*"); }
pass() { say "ok: $*"; }

for tool in promtool yamllint python3; do
  if ! command -v "$tool" > /dev/null; then
    say "FAILED: $tool is not installed (bash deploy/install-deps.sh installs it)"
    exit 1
  fi
done
if ! python3 -c 'import yaml' 2> /dev/null; then
  say "FAILED: python3 cannot import yaml (Debian: python3-yaml, which yamllint depends on)"
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Prometheus configuration.
for config in prometheus.yml prometheus-cluster.yml prometheus-sharded.yml; do
  if log="$(promtool check config "$deploy/prometheus/$config" 2>&1)"; then
    pass "promtool check config deploy/prometheus/$config"
  else
    echo "$log" >&2
    fail "promtool check config deploy/prometheus/$config"
  fi
done

# 2. YAML lint.
yaml_files=(
  "$deploy/docker-compose.yml"
  "$deploy/docker-compose.cluster.yml"
  "$deploy/docker-compose.sharded.yml"
  "$deploy/prometheus/prometheus.yml"
  "$deploy/prometheus/prometheus-cluster.yml"
  "$deploy/prometheus/prometheus-sharded.yml"
  "$deploy/grafana/provisioning/datasources/prometheus.yml"
  "$deploy/grafana/provisioning/dashboards/hier.yml"
  "$deploy/.yamllint"
)
shopt -s nullglob
k8s_files=("$deploy"/k8s/*.yaml "$deploy"/k8s/*/*.yaml)
shopt -u nullglob
if [ ${#k8s_files[@]} -eq 0 ]; then fail "no Kubernetes manifests under deploy/k8s"; fi
yaml_files+=("${k8s_files[@]}")
if log="$(yamllint --strict -f parsable -c "$deploy/.yamllint" "${yaml_files[@]}" 2>&1)"; then
  pass "yamllint (${#yaml_files[@]} files)"
else
  echo "$log" >&2
  fail "yamllint (deploy/.yamllint): see the lines above"
fi

# 3. Everything that needs parsing: the dashboard, the compose file, the manifests, the
# Dockerfiles, the flags and the metric names. Writes the promtool rules file of the dashboard's
# queries and the metric list; prints one "FAIL <text>" line per failure.
if ! python3 - "$root" "$work" > "$work/python.log" <<'PY'
import json
import os
import re
import sys

import yaml

root, work = sys.argv[1], sys.argv[2]
deploy = os.path.join(root, "deploy")
failures = []


def fail(text):
    if text not in failures:
        failures.append(text)


def read(path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def exists(path):
    return os.path.exists(os.path.join(root, path))


# --- flags the binaries define --------------------------------------------------------------
server_flags = set(re.findall(r"ABSL_FLAG\(\s*[\w:<>]+(?:<[^>]*>)?\s*,\s*(\w+)\s*,",
                              read("server/tools/hier_server_main.cc")))
trainer_flags = set(re.findall(r'\{\s*"(\w+)"\s*,\s*&C::', read("trainer/train/train_config.cc")))
client_flags = set(re.findall(r'Add(?:String|Double|Int|Bool|Int64)\(\s*"([\w-]+)"',
                              read("client/connection_flags.cc")))
if len(server_flags) < 10:
    fail(f"could not read hier-server's flags from server/tools/hier_server_main.cc ({server_flags})")
if len(trainer_flags) < 10:
    fail(f"could not read hier-train's flags from trainer/train/train_config.cc ({trainer_flags})")


def check_flags(args, known, binary, where):
    for arg in args:
        m = re.match(r"^--([A-Za-z][\w-]*)", arg)
        if not m:
            continue
        name = m.group(1).replace("-", "_")
        if name in ("help", "helpfull"):
            continue
        if name not in known and name.replace("_", "-") not in known:
            fail(f"{where}: {binary} has no flag --{m.group(1)}")


# --- the dashboard --------------------------------------------------------------------------
dashboard_path = "deploy/grafana/dashboards/hier-serve.json"
try:
    dashboard = json.loads(read(dashboard_path))
except (OSError, ValueError) as e:
    fail(f"{dashboard_path} does not parse: {e}")
    dashboard = None

datasources = yaml.safe_load(read("deploy/grafana/provisioning/datasources/prometheus.yml"))
ds_uids = {d.get("uid") for d in (datasources or {}).get("datasources", [])}
if not ds_uids - {None}:
    fail("the Grafana data source provisioning names no uid")

exprs = []      # (where, PromQL)
queries = []    # every query text, PromQL or Grafana's label_values(...)


def walk_panels(panels, path):
    for panel in panels or []:
        title = panel.get("title", "?")
        where = f"{path}panel '{title}'"
        if panel.get("type") == "row":
            walk_panels(panel.get("panels"), path)
            continue
        for obj in [panel] + list(panel.get("targets", [])):
            ds = obj.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") not in ds_uids and not str(
                    ds.get("uid", "")).startswith("$"):
                fail(f"{dashboard_path}: {where} uses data source uid {ds.get('uid')!r}, "
                     f"not one of the provisioned {sorted(u for u in ds_uids if u)}")
        targets = panel.get("targets", [])
        if not targets:
            fail(f"{dashboard_path}: {where} has no query")
        for target in targets:
            expr = target.get("expr", "")
            if not expr.strip():
                fail(f"{dashboard_path}: {where} target {target.get('refId')} has an empty expr")
                continue
            exprs.append((where, expr))
            queries.append(expr)
        walk_panels(panel.get("panels"), where + " / ")


if dashboard is not None:
    panels = dashboard.get("panels", [])
    walk_panels(panels, "")
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        fail(f"{dashboard_path}: panel ids are not unique")
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        for text in (query, var.get("definition")):
            if isinstance(text, str) and text.strip():
                queries.append(text)
    if not exprs:
        fail(f"{dashboard_path}: no queries found")

# PromQL syntax through promtool: each query as a recording rule, Grafana's variables replaced.
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "instance": ".*"}


def substitute(expr):
    def value(m):
        return GRAFANA_VARS.get(m.group(1) or m.group(2), ".*")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


rules = {"groups": [{"name": "dashboard", "rules": [
    {"record": f"dashboard:query_{i}", "expr": substitute(expr)} for i, (_, expr) in enumerate(exprs)]}]}
with open(os.path.join(work, "dashboard-rules.yml"), "w", encoding="utf-8") as f:
    yaml.safe_dump(rules, f, sort_keys=False)
with open(os.path.join(work, "dashboard-rules.where"), "w", encoding="utf-8") as f:
    for i, (where, expr) in enumerate(exprs):
        f.write(f"dashboard:query_{i}\t{where}\t{expr}\n")

# Metric names: every identifier of a query (string literals removed) that starts with
# grpc_server_, hier_ or process_; a histogram's _bucket/_sum/_count series count as the histogram.
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
METRIC = re.compile(r"^(grpc_server_|hier_|process_)[a-z0-9_]+$")
names = set()
for query in queries:
    for ident in IDENT.findall(STRINGS.sub(" ", query)):
        if METRIC.match(ident):
            names.add(re.sub(r"_(bucket|sum|count)$", "", ident))
with open(os.path.join(work, "metrics.txt"), "w", encoding="utf-8") as f:
    f.writelines(name + "\n" for name in sorted(names))

# Every one of them is a name the server's sources define (server/metrics/).
defined = set()
metrics_dir = os.path.join(root, "server", "metrics")
for name in sorted(os.listdir(metrics_dir)):
    if name.endswith((".cc", ".h")):
        with open(os.path.join(metrics_dir, name), encoding="utf-8") as f:
            defined |= set(re.findall(r'"((?:grpc_server_|hier_|process_)[a-z0-9_]+)"', f.read()))
for name in sorted(names - defined):
    fail(f"{dashboard_path}: metric {name} is not defined under server/metrics/")
for required in () if dashboard is None else ("grpc_server_handled_total", "grpc_server_handling_seconds", "hier_index_items",
                 "hier_embed_batch_size", "hier_search_stage_seconds", "hier_search_recall",
                 "hier_search_effort", "hier_model_info",
                 "hier_training_jobs", "hier_job_loss", "hier_job_recall_at_1",
                 "process_resident_memory_bytes", "process_cpu_seconds_total"):
    if required not in names:
        fail(f"{dashboard_path}: no panel queries {required}")

# --- Dockerfiles ----------------------------------------------------------------------------


def instructions(path):
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    result, current = [], ""
    for line in read(path).splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        result.append((word.upper(), rest.strip()))
        current = ""
    return result


def exec_form(text, where):
    try:
        value = json.loads(text)
    except ValueError:
        fail(f"{where}: not in exec (JSON array) form: {text}")
        return []
    return value


for path in ("deploy/Dockerfile", "deploy/Dockerfile.cuda"):
    if not exists(path):
        fail(f"{path} is missing")
        continue
    if not exists(path + ".dockerignore"):
        fail(f"{path}.dockerignore is missing (the build context would include build/ and state/)")
    # A `# syntax=` parser directive makes BuildKit pull that frontend image from a registry; the
    # daemon's built-in frontend (Docker 20.10+) handles what these files use (RUN --mount).
    if re.search(r"^#\s*syntax\s*=", read(path), re.M | re.I):
        fail(f"{path}: a `# syntax=` directive (the build would fetch a frontend image)")
    ins = instructions(path)
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    if "bash deploy/build.sh" not in runs:
        fail(f"{path}: no RUN calls deploy/build.sh (the build CI runs)")
    users = [rest for word, rest in ins if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail(f"{path}: the final stage does not switch to a non-root USER")
    if not any(word == "VOLUME" for word, _ in ins):
        fail(f"{path}: no VOLUME")
    entry = [rest for word, rest in ins if word == "ENTRYPOINT"]
    if not entry:
        fail(f"{path}: no ENTRYPOINT")

cpu = instructions("deploy/Dockerfile") if exists("deploy/Dockerfile") else []
if cpu:
    runs = " ".join(rest for word, rest in cpu if word == "RUN")
    if "bash deploy/install-deps.sh" not in runs:
        fail("deploy/Dockerfile: no RUN calls deploy/install-deps.sh (the dependencies CI installs)")
    froms = [rest for word, rest in cpu if word == "FROM"]
    args = {rest.split("=", 1)[0]: rest.split("=", 1)[1] for word, rest in cpu
            if word == "ARG" and "=" in rest}
    bases = [args.get(f.split()[0].strip("${}"), f.split()[0]) for f in froms]
    if len(froms) < 2 or not all(b.startswith("debian:bookworm") for b in bases):
        fail(f"deploy/Dockerfile: expected a multi-stage build on debian:bookworm, got {bases}")
    exposed = " ".join(rest for word, rest in cpu if word == "EXPOSE").split()
    for port in ("50051", "9464"):
        if port not in exposed:
            fail(f"deploy/Dockerfile: does not EXPOSE {port}")
    volumes = " ".join(rest for word, rest in cpu if word == "VOLUME")
    for volume in ("/data", "/runs", "/state"):
        if f'"{volume}"' not in volumes:
            fail(f"deploy/Dockerfile: no VOLUME {volume}")
    health = [rest for word, rest in cpu if word == "HEALTHCHECK"]
    if not health or "CMD" not in health[-1]:
        fail("deploy/Dockerfile: no HEALTHCHECK")
    else:
        command = exec_form(health[-1].split("CMD", 1)[1].strip(), "deploy/Dockerfile HEALTHCHECK")
        if command[:2] != ["hier", "health"] or "127.0.0.1:50051" not in command:
            fail(f"deploy/Dockerfile: HEALTHCHECK is not `hier health --server 127.0.0.1:50051`: "
                 f"{command}")
        check_flags(command[2:], client_flags, "hier", "deploy/Dockerfile HEALTHCHECK")
    entry = [rest for word, rest in cpu if word == "ENTRYPOINT"]
    if entry:
        command = exec_form(entry[-1], "deploy/Dockerfile ENTRYPOINT")
        if not command or command[0] != "hier-server":
            fail(f"deploy/Dockerfile: ENTRYPOINT does not run hier-server: {command}")
        joined = " ".join(command)
        for expected in ("--state-dir /state", "--runs-dir /runs",
                         "--data-roots /data,/usr/share/datasets", "--listen 0.0.0.0:50051",
                         "--http-listen 0.0.0.0:8080", "--metrics-listen 0.0.0.0:9464"):
            if expected not in joined:
                fail(f"deploy/Dockerfile: ENTRYPOINT lacks {expected}")
        check_flags(command[1:], server_flags, "hier-server", "deploy/Dockerfile ENTRYPOINT")

cuda = instructions("deploy/Dockerfile.cuda") if exists("deploy/Dockerfile.cuda") else []
if cuda:
    runs = " ".join(rest for word, rest in cuda if word == "RUN")
    for expected in ("-DHIER_CORE_ONLY=ON", "-DCMAKE_PREFIX_PATH=/opt/libtorch", "-DHIER_WITH_NCCL=ON"):
        if expected not in runs:
            fail(f"deploy/Dockerfile.cuda: deploy/build.sh is not called with {expected}")
    if "libtorch-cxx11-abi-shared-with-deps" not in read("deploy/Dockerfile.cuda"):
        fail("deploy/Dockerfile.cuda: not the cxx11-ABI LibTorch")
    entry = [rest for word, rest in cuda if word == "ENTRYPOINT"]
    cmd = [rest for word, rest in cuda if word == "CMD"]
    if entry and exec_form(entry[-1], "deploy/Dockerfile.cuda ENTRYPOINT") != ["hier-train"]:
        fail("deploy/Dockerfile.cuda: ENTRYPOINT is not hier-train")
    if cmd:
        check_flags(exec_form(cmd[-1], "deploy/Dockerfile.cuda CMD"), trainer_flags, "hier-train",
                    "deploy/Dockerfile.cuda CMD")

# --- compose ------------------------------------------------------------------------------
def compose_value(text):
    """A compose value with ${VAR-default} / ${VAR:-default} replaced by the default."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(text))


def compose_services(compose_path, required):
    """The services of a compose file, after the checks every service gets."""
    compose = yaml.safe_load(read(compose_path)) or {}
    services = compose.get("services", {})
    for name in required:
        if name not in services:
            fail(f"{compose_path}: no service {name}")
    for name, service in services.items():
        build = service.get("build")
        if isinstance(build, dict):
            context = os.path.normpath(os.path.join(deploy, build.get("context", ".")))
            dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
            if not os.path.isfile(dockerfile):
                fail(f"{compose_path}: service {name} builds from missing {dockerfile}")
        for volume in service.get("volumes", []):
            source = (compose_value(volume).split(":")[0] if isinstance(volume, str) else
                      compose_value(volume.get("source", "")))
            if source.startswith((".", "/")) and not os.path.exists(os.path.join(deploy, source)):
                fail(f"{compose_path}: service {name} mounts missing {source}")
            elif (source and not source.startswith((".", "/")) and
                  source not in (compose.get("volumes") or {})):
                fail(f"{compose_path}: service {name} uses undeclared volume {source}")
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret.get("source")
            if secret_name not in (compose.get("secrets") or {}):
                fail(f"{compose_path}: service {name} uses undeclared secret {secret_name}")
    return services


compose_path = "deploy/docker-compose.yml"
services = compose_services(compose_path, ("hier-server", "prometheus", "grafana", "trainer-gpu"))

server = services.get("hier-server", {})
if server:
    if "deploy/Dockerfile" != (server.get("build") or {}).get("dockerfile"):
        fail(f"{compose_path}: hier-server is not built from deploy/Dockerfile")
    ports = " ".join(str(p) for p in server.get("ports", []))
    for port in ("50051", "9464"):
        if f":{port}" not in ports:
            fail(f"{compose_path}: hier-server does not publish {port}")
    targets = {compose_value(v).split(":")[1] for v in server.get("volumes", []) if isinstance(v, str)}
    for volume in ("/data", "/runs", "/state"):
        if volume not in targets:
            fail(f"{compose_path}: hier-server does not mount {volume}")
    command = [compose_value(c) for c in server.get("command", [])]
    if not any(c.startswith("--token-file=/run/secrets/") for c in command):
        fail(f"{compose_path}: hier-server does not read its token from a secret")
    check_flags(command, server_flags, "hier-server", f"{compose_path} hier-server")
for name in ("trainer", "trainer-gpu"):
    if name in services:
        check_flags([compose_value(c) for c in services[name].get("command", [])], trainer_flags,
                    "hier-train", f"{compose_path} {name}")
gpu = services.get("trainer-gpu", {})
if gpu:
    if "gpu" not in gpu.get("profiles", []):
        fail(f"{compose_path}: trainer-gpu is not in profile gpu")
    if (gpu.get("build") or {}).get("dockerfile") != "deploy/Dockerfile.cuda":
        fail(f"{compose_path}: trainer-gpu is not built from deploy/Dockerfile.cuda")
    devices = (((gpu.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get(
        "devices") or []
    if not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) and
               d.get("count") == 1 for d in devices):
        fail(f"{compose_path}: trainer-gpu reserves no nvidia GPU (count 1, capabilities [gpu])")


def scrape_targets(path):
    config = yaml.safe_load(read(path))
    return [t for job in config.get("scrape_configs", [])
            for sc in job.get("static_configs", []) for t in sc.get("targets", [])]


if "hier-server:9464" not in scrape_targets("deploy/prometheus/prometheus.yml"):
    fail("deploy/prometheus/prometheus.yml: does not scrape hier-server:9464")

# The clusters: PostgreSQL and nodes that reach it with a password from a secret, all scraped.
def check_cluster_nodes(compose_path, prometheus_path, services, nodes):
    targets = scrape_targets(prometheus_path)
    for name in nodes:
        command = [compose_value(c) for c in services[name].get("command", [])]
        if not any(c.startswith("--store=postgresql://") for c in command):
            fail(f"{compose_path}: {name} has no --store=postgresql://...")
        if not any(c.startswith("--store-password-file=/run/secrets/") for c in command):
            fail(f"{compose_path}: {name} does not read the PostgreSQL password from a secret")
        check_flags(command, server_flags, "hier-server", f"{compose_path} {name}")
        if f"{name}:9464" not in targets:
            fail(f"{prometheus_path}: does not scrape {name}:9464")


cluster_path = "deploy/docker-compose.cluster.yml"
cluster = compose_services(cluster_path, ("postgres", "prometheus"))
replicas = [name for name in cluster if name.startswith("hier-replica-")]
if len(replicas) < 2:
    fail(f"{cluster_path}: fewer than 2 hier-replica-* services")
check_cluster_nodes(cluster_path, "deploy/prometheus/prometheus-cluster.yml", cluster, replicas)

# The sharded cluster: shard I/N replicas advertising their service name, and a router.
sharded_path = "deploy/docker-compose.sharded.yml"
sharded = compose_services(sharded_path, ("postgres", "prometheus", "hier-router"))
shard_nodes = sorted(name for name in sharded if name.startswith("hier-shard-"))
seen_shards = set()
for name in shard_nodes:
    command = [compose_value(c) for c in sharded[name].get("command", [])]
    shard = [c.split("=", 1)[1] for c in command if c.startswith("--shard=")]
    if not shard:
        fail(f"{sharded_path}: {name} has no --shard=I/N")
    else:
        seen_shards.add(shard[0])
    if f"--advertise={name}:50051" not in command:
        fail(f"{sharded_path}: {name} does not --advertise={name}:50051")
counts = {s.split("/")[1] for s in seen_shards}
if len(counts) != 1 or len(seen_shards) != int(next(iter(counts), "0") or 0):
    fail(f"{sharded_path}: the shards {sorted(seen_shards)} are not every I/N of one N")
router_node = sharded.get("hier-router", {})
if "--router" not in router_node.get("command", []):
    fail(f"{sharded_path}: hier-router does not run with --router")
if ":50051" not in " ".join(str(p) for p in router_node.get("ports", [])):
    fail(f"{sharded_path}: hier-router does not publish 50051")
check_cluster_nodes(sharded_path, "deploy/prometheus/prometheus-sharded.yml", sharded,
                    shard_nodes + (["hier-router"] if router_node else []))

# --- Kubernetes ----------------------------------------------------------------------------
k8s_dir = os.path.join(deploy, "k8s")
kinds = {}
k8s_paths = sorted(os.path.relpath(os.path.join(folder, name), root)
                   for folder, _, names in os.walk(k8s_dir) for name in names
                   if name.endswith((".yaml", ".yml")))
for path in k8s_paths:
    for doc in yaml.safe_load_all(read(path)):
        if doc is None:
            continue
        for key in ("apiVersion", "kind"):
            if key not in doc:
                fail(f"{path}: a document without {key}")
        if doc.get("kind") != "Kustomization" and not (doc.get("metadata") or {}).get("name"):
            fail(f"{path}: a {doc.get('kind')} without metadata.name")
        kinds.setdefault(doc.get("kind"), []).append((path, doc))
for kind in ("Deployment", "Service", "PersistentVolumeClaim", "Job", "Secret", "Kustomization"):
    if kind not in kinds:
        fail(f"deploy/k8s: no {kind}")
for path, doc in kinds.get("Kustomization", []):
    for resource in doc.get("resources", []):
        if not os.path.exists(os.path.join(root, os.path.dirname(path), resource)):
            fail(f"{path}: resource {resource} is missing")
for path, doc in kinds.get("Deployment", []):
    template = doc["spec"]["template"]
    annotations = template.get("metadata", {}).get("annotations", {})
    for key, value in (("prometheus.io/scrape", "true"), ("prometheus.io/port", "9464"),
                       ("prometheus.io/path", "/metrics")):
        if annotations.get(key) != value:
            fail(f"{path}: pod annotation {key} is not {value!r}")
    containers = {c["name"]: c for c in template["spec"]["containers"]}
    server = containers.get("hier-server")
    if not server:
        fail(f"{path}: no container hier-server")
        continue
    args = server.get("args", [])
    check_flags(args, server_flags, "hier-server", f"{path} args")
    if (server.get("readinessProbe") or {}).get("grpc", {}).get("port") != 50051:
        fail(f"{path}: readinessProbe is not a gRPC probe on port 50051")
    if any(a.startswith("--store=") for a in args):
        # Replicas of a cluster store: several, and not restarted for being behind.
        if doc["spec"].get("replicas", 1) < 2:
            fail(f"{path}: a cluster Deployment with fewer than 2 replicas")
        if "grpc" in (server.get("livenessProbe") or {}):
            fail(f"{path}: a gRPC liveness probe would restart replicas that are catching up")
    else:
        if (server.get("livenessProbe") or {}).get("grpc", {}).get("port") != 50051:
            fail(f"{path}: livenessProbe is not a gRPC probe on port 50051")
        if doc["spec"].get("replicas", 1) != 1:
            fail(f"{path}: more than one replica would share one state folder")
for path, doc in kinds.get("Job", []):
    for container in doc["spec"]["template"]["spec"]["containers"]:
        script = "\n".join(container.get("command", []) + container.get("args", []))
        for line in script.replace("\\\n", " ").splitlines():
            if "hier-train" in line:
                check_flags(re.findall(r"--[A-Za-z][\w-]*", line.split("hier-train", 1)[1]),
                            trainer_flags, "hier-train", f"{path} {container['name']}")

for text in failures:
    print("FAIL " + text)
PY
then
  fail "the Python checks crashed: $(tail -n 3 "$work/python.log" | tr '\n' ' ')"
fi
if grep -q '^FAIL ' "$work/python.log"; then
  while IFS= read -r line; do fail "${line#FAIL }"; done < <(grep '^FAIL ' "$work/python.log")
else
  pass "dashboard, Dockerfiles, compose file, manifests, flags and metric names"
fi

# 4. PromQL syntax of every dashboard query.
if [ -s "$work/dashboard-rules.yml" ]; then
  if log="$(promtool check rules "$work/dashboard-rules.yml" 2>&1)"; then
    pass "promtool check rules: $(grep -c '^dashboard:' "$work/dashboard-rules.where") dashboard queries parse"
  else
    echo "$log" >&2
    say "queries (record name, panel, expr):"
    cat "$work/dashboard-rules.where" >&2
    fail "a dashboard query is not valid PromQL"
  fi
fi

# 5. The metric names.
if [ -s "$work/metrics.txt" ]; then
  if [ -n "$out" ]; then
    cp "$work/metrics.txt" "$out"
    say "wrote $(wc -l < "$out") metric names to $out"
  else
    cat "$work/metrics.txt"
  fi
else
  fail "no metric names found in the dashboard's queries"
fi

if [ ${#failures[@]} -gt 0 ]; then
  say "${#failures[@]} check(s) failed:"
  for text in "${failures[@]}"; do echo "  - $text" >&2; done
  exit 1
fi
say "all checks passed"
