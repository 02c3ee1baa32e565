#!/usr/bin/env bash
# Builds the CPU image (deploy/Dockerfile) and runs it the way deploy/README.md says to, with no
# image registry: the Debian 12 base comes from debootstrap, the Dockerfile needs no frontend image.
#
#   bash deploy/check-image.sh [--head] [--avx2]
#
#   --head   build the committed tree (git archive HEAD) rather than the working tree
#   --avx2   build the default image (HIER_FAISS_AVX2=auto: FAISS for AVX2 on an AVX2 host, which
#            then runs only on AVX2/FMA CPUs); without it, the baseline image (HIER_FAISS_AVX2=0,
#            Debian's FAISS), which builds faster and runs on any x86-64 CPU
#
# Steps, each bounded in time; any failure stops the check with a message and exit status 1:
#  1. a docker daemon: the running one, else dockerd started here (in the background, under
#     nice -n 10 with $HIER_DOCKERD_ARGS) and stopped again on exit;
#  2. the base images debian:bookworm and debian:bookworm-slim, when missing: debootstrap
#     --variant=minbase bookworm from $HIER_DEBIAN_MIRROR, imported under both names (kept: later
#     runs skip this); a container of it must start;
#  3. DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile -t $HIER_IMAGE (default hier-serve:check);
#  4. hier-train from the image trains a small model (20 steps on the image's Fashion-MNIST) into a
#     runs volume and exports 20 test images into a data volume (no network);
#  5. a server container with that model, a token file mounted read-only, volumes on /state, /runs
#     and /data, the gRPC and metrics ports published on 127.0.0.1 only; Docker's HEALTHCHECK
#     must report healthy;
#  6. through the published port (the image's own hier and hier-bench, in containers on the host
#     network): health SERVING; a write without the token refused; with it, 32 vectors and the 20
#     images added; stats: 52 items, the model served; a search by item returns 5 neighbours; a
#     search by one of the images finds its item first at distance ~0; /metrics: hier_index_items 52;
#  7. docker stop -t 90 (SIGTERM): exit code 0, the log shows the drain and the index snapshot;
#  8. a new container on the same volumes: healthy, 52 items, the same answers to both searches;
#     stopped with exit code 0; then both containers and the volumes are removed (the images
#     stay, for the build cache).
# Needs root (or the docker group, with a running daemon) and Debian's docker.io (the daemon, 20.10
# with BuildKit built in; containerd, runc) and debootstrap while the base images are missing:
#   apt-get install --no-install-recommends docker.io debootstrap
# Environment: HIER_IMAGE, DOCKER (the CLI), HIER_DOCKERD_ARGS (e.g. "--storage-driver vfs"),
# HIER_DEBIAN_MIRROR (http://deb.debian.org/debian), HIER_DEBIAN_SECURITY_MIRROR
# (http://deb.debian.org/debian-security), HIER_BUILD_NETWORK (docker build --network, e.g. host),
# HIER_BUILD_TIMEOUT (seconds, default 14400).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
from_head=0
faiss_avx2=0
for arg in "$@"; do
  case "$arg" in
    --head) from_head=1 ;;
    --avx2) faiss_avx2=auto ;;
    -h|--help) sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bash deploy/check-image.sh [--head] [--avx2]" >&2; exit 2 ;;
  esac
done

image="${HIER_IMAGE:-hier-serve:check}"
mirror="${HIER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${HIER_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
build_timeout="${HIER_BUILD_TIMEOUT:-14400}"
install_hint="apt-get install --no-install-recommends docker.io debootstrap"

say() { echo "check-image: $*" >&2; }
pass() { say "ok: $*"; }
fail() {
  say "FAILED: $*"
  exit 1
}
now() { date +%s; }
t_start=$(now)

work="$(mktemp -d "${TMPDIR:-/var/tmp}/hier-check-image.XXXXXX")"
chmod 0755 "$work"
tag="hier-check-$$"
containers=()
volumes=()
dockerd_pid=""
docker_cli=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$docker_cli" ]; then
    for c in "${containers[@]}"; do
      timeout 120 "$docker_cli" rm -f -v "$c" > /dev/null 2>&1 || say "could not remove container $c"
    done
    for v in "${volumes[@]}"; do
      timeout 60 "$docker_cli" volume rm "$v" > /dev/null 2>&1 || say "could not remove volume $v"
    done
  fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2> /dev/null; then
    say "stopping the dockerd started here (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2> /dev/null || true
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2> /dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2> /dev/null; then
      say "dockerd did not stop in 30 s; killing it"
      kill -KILL "$dockerd_pid" 2> /dev/null || true
    fi
  fi
  if [ "$rc" -eq 0 ]; then
    rm -rf "$work"
  else
    say "logs kept in $work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. the docker CLI and daemon --------------------------------------------------------------
# A CLI from Docker 23 on builds through the buildx plugin and fails without it; Debian 12's
# docker.io CLI (20.10) has BuildKit built in.
candidates=()
[ -n "${DOCKER:-}" ] && candidates+=("$DOCKER")
if command -v docker > /dev/null; then candidates+=("$(command -v docker)"); fi
[ -x /usr/bin/docker ] && candidates+=(/usr/bin/docker)
for c in "${candidates[@]}"; do
  major="$("$c" --version 2> /dev/null | sed -n 's/^Docker version \([0-9][0-9]*\)\..*/\1/p')"
  [ -n "$major" ] || continue
  if [ "$major" -lt 23 ] || "$c" buildx version > /dev/null 2>&1; then
    docker_cli="$c"
    break
  fi
  say "skipping $c: Docker $major without the buildx plugin cannot build with BuildKit"
done
[ -n "$docker_cli" ] || fail "no docker CLI that builds with BuildKit; install Debian's: $install_hint"
d() { "$docker_cli" "$@"; }

if timeout 30 "$docker_cli" info > /dev/null 2>&1; then
  pass "docker daemon running ($("$docker_cli" --version))"
else
  dockerd_bin="$(command -v dockerd || true)"
  if [ -z "$dockerd_bin" ] && [ -x /usr/sbin/dockerd ]; then dockerd_bin=/usr/sbin/dockerd; fi
  [ -n "$dockerd_bin" ] || fail "no docker daemon answers and dockerd is not installed: $install_hint"
  [ "$(id -u)" -eq 0 ] || fail "no docker daemon answers, and starting dockerd needs root"
  say "starting $dockerd_bin${HIER_DOCKERD_ARGS:+ $HIER_DOCKERD_ARGS} (log: $work/dockerd.log)"
  # shellcheck disable=SC2086  # HIER_DOCKERD_ARGS is a list of flags
  setsid nice -n 10 "$dockerd_bin" --pidfile "$work/dockerd.pid" ${HIER_DOCKERD_ARGS:-} \
    > "$work/dockerd.log" 2>&1 < /dev/null &
  dockerd_pid=$!
  t0=$(now)
  while [ $(($(now) - t0)) -lt 60 ]; do
    if ! kill -0 "$dockerd_pid" 2> /dev/null; then
      tail -n 20 "$work/dockerd.log" >&2
      dockerd_pid=""
      fail "dockerd exited at start (log above); see deploy/README.md for flags that work without overlayfs or iptables"
    fi
    timeout 5 "$docker_cli" info > /dev/null 2>&1 && break
    sleep 1
  done
  timeout 5 "$docker_cli" info > /dev/null 2>&1 || { tail -n 20 "$work/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
  pass "dockerd started ($(d version -f '{{.Server.Version}}'), storage $(d info -f '{{.Driver}}'))"
fi

# --- 2. the Debian 12 base images ---------------------------------------------------------------
t0=$(now)
missing=()
for base in debian:bookworm debian:bookworm-slim; do
  d image inspect "$base" > /dev/null 2>&1 || missing+=("$base")
done
if [ ${#missing[@]} -eq 0 ]; then
  base_note="base images present (cached)"
else
  command -v debootstrap > /dev/null || fail "${missing[*]} missing and debootstrap is not installed: $install_hint"
  [ "$(id -u)" -eq 0 ] || fail "${missing[*]} missing, and debootstrap needs root"
  rootfs="$work/rootfs"
  say "debootstrap --variant=minbase bookworm from $mirror (log: $work/debootstrap.log)"
  timeout 3600 nice -n 10 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  # What Debian's official images add: updates and security sources, no services started by
  # package installs (policy-rc.d), no .deb files left in layers; no downloaded lists or host files.
  cat > "$rootfs/etc/apt/sources.list" << SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
SOURCES
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" << 'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
  find "$rootfs/var/cache/apt" "$rootfs/var/lib/apt/lists" -type f -delete
  : > "$rootfs/etc/resolv.conf"
  : > "$rootfs/etc/hostname"
  id="$(tar --numeric-owner -C "$rootfs" -c . \
        | timeout 600 "$docker_cli" import --change 'CMD ["bash"]' \
            --message "debootstrap --variant=minbase bookworm $mirror" - 2> "$work/import.log")" \
    || { cat "$work/import.log" >&2; fail "docker import"; }
  for base in "${missing[@]}"; do d tag "$id" "$base"; done
  rm -rf "$rootfs"
  base_note="base images debootstrapped and imported as ${missing[*]} in $(($(now) - t0)) s"
fi
release="$(timeout 120 "$docker_cli" run --rm --network none debian:bookworm-slim cat /etc/debian_version)" \
  || fail "a container of debian:bookworm-slim does not start"
case "$release" in 12.*) ;; *) fail "debian:bookworm-slim is Debian '$release', not 12" ;; esac
pass "$base_note; a container of it starts (Debian $release)"

# --- 3. the image ------------------------------------------------------------------------------
context="$root"
if [ "$from_head" -eq 1 ]; then
  context="$work/context"
  mkdir -p "$context"
  git -C "$root" archive --format=tar HEAD | tar -x -C "$context"
  say "context: the committed tree ($(git -C "$root" rev-parse --short HEAD))"
fi
build_args=(--build-arg "HIER_FAISS_AVX2=$faiss_avx2")
[ -n "${HIER_BUILD_NETWORK:-}" ] && build_args+=(--network "$HIER_BUILD_NETWORK")
say "building $image (HIER_FAISS_AVX2=$faiss_avx2; log: $work/build.log)"
previous="$(d image inspect -f '{{.Id}}' "$image" 2> /dev/null || true)"
t0=$(now)
set +e
DOCKER_BUILDKIT=1 timeout "$build_timeout" "$docker_cli" build --progress=plain \
  -f "$context/deploy/Dockerfile" -t "$image" "${build_args[@]}" "$context" 2>&1 \
  | tee "$work/build.log" \
  | awk '/^#[0-9]+ \[/ && !seen[$0]++ || /^#[0-9]+ (DONE|CACHED|ERROR)/ { print; fflush() }' >&2
status=${PIPESTATUS[0]}
set -e
build_s=$(($(now) - t0))
if [ "$status" -ne 0 ]; then
  tail -n 40 "$work/build.log" >&2
  [ "$status" -eq 124 ] && fail "docker build did not finish within $build_timeout s"
  fail "docker build (exit $status; log above)"
fi
size_mb=$(($(d image inspect -f '{{.Size}}' "$image") / 1000000))
# The previous build under this tag, now untagged (a failure here only leaves it behind).
if [ -n "$previous" ] && [ "$previous" != "$(d image inspect -f '{{.Id}}' "$image")" ]; then
  d rmi "$previous" > /dev/null 2>&1 || true
fi
pass "built $image in $build_s s ($size_mb MB)"

# --- 4. a model and images, made in the image ----------------------------------------------------
# hier-train from the image trains a small model on the image's Fashion-MNIST (dataset-fashion-mnist)
# into a runs volume and exports test images into a data volume: LibTorch, the data set and the
# image encoder of the runtime stage at work, with no network.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token"
chmod 0644 "$work/token"  # read by uid 10001 in the container
HIER_TOKEN="$(cat "$work/token")"
export HIER_TOKEN
for v in state runs data; do
  volumes+=("$tag-$v")
  d volume create "$tag-$v" > /dev/null
done

t0=$(now)
timeout 900 "$docker_cli" run --rm --network none --no-healthcheck -v "$tag-runs:/runs" \
  --entrypoint hier-train "$image" --run-dir /runs/check --epochs 1 --steps-per-epoch 20 --seed 0 \
  --test-limit 200 --emb 32 --num-proxies 64 --threads 2 > "$work/train.log" 2>&1 \
  || { tail -n 20 "$work/train.log" >&2; fail "hier-train in the image (log above)"; }
train_s=$(($(now) - t0))
timeout 300 "$docker_cli" run --rm --network none --no-healthcheck -v "$tag-data:/data" \
  --entrypoint hier-train "$image" export-images --out /data/images --limit 20 > "$work/export.log" 2>&1 \
  || { cat "$work/export.log" >&2; fail "hier-train export-images in the image"; }
pass "hier-train in the image: a model (20 steps, $(grep -o 'R@1 [0-9.]*' "$work/train.log" | tail -n 1)) in $train_s s; 20 test images exported"

# --- 5. a container ----------------------------------------------------------------------------
start_server() {  # NAME: a detached server on the volumes, ports on loopback only
  containers+=("$1")
  timeout 120 "$docker_cli" run -d --name "$1" \
    -p 127.0.0.1::50051 -p 127.0.0.1::9464 \
    -v "$tag-state:/state" -v "$tag-runs:/runs" -v "$tag-data:/data:ro" \
    -v "$work/token:/run/secrets/hier_token:ro" \
    "$image" --model /runs/check --token-file /run/secrets/hier_token \
    --torch-threads 1 --index-threads 1 > /dev/null || fail "docker run $1"
}

wait_healthy() {  # NAME: Docker's HEALTHCHECK (hier health every 15 s) reports healthy
  local t0 state
  t0=$(now)
  while :; do
    state="$(d inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1")"
    case "$state" in
      "running healthy") break ;;
      exited* | dead*)
        d logs "$1" 2>&1 | tail -n 20 >&2
        fail "$1 stopped before it was healthy ($state; log above)" ;;
    esac
    if [ $(($(now) - t0)) -ge 240 ]; then
      d logs "$1" 2>&1 | tail -n 20 >&2
      d inspect -f '{{json .State.Health}}' "$1" >&2
      fail "$1 not healthy within 240 s ($state)"
    fi
    sleep 2
  done
  health_s=$(($(now) - t0))
}

published() {  # NAME PORT: host:port, which must be on 127.0.0.1
  local address
  address="$(d port "$1" "$2/tcp" | head -n 1)"
  case "$address" in
    127.0.0.1:*) echo "$address" ;;
    *) fail "$1: port $2 is published on '$address', not 127.0.0.1 only" ;;
  esac
}

client() {  # BINARY ARGS...: the image's client on the host network, through the published port
  timeout 120 "$docker_cli" run --rm --network host --no-healthcheck -e HIER_TOKEN \
    -v "$tag-data:/data:ro" --entrypoint "$@"
}

check_serving() {  # NAME: sets grpc, metrics
  grpc="$(published "$1" 50051)"
  metrics="$(published "$1" 9464)"
  [ "$(client hier "$image" --server "$grpc" health)" = SERVING ] \
    || fail "$1: hier health through $grpc is not SERVING"
}

stat_of() {  # NAME: that line of hier stats
  local stats
  stats="$(client hier "$image" --server "$grpc" stats)" || fail "hier stats through $grpc"
  awk -v name="$1" '$1 == name { print $2 }' <<< "$stats"
}

searches() {  # N: writes search-N-id.json and search-N-image.json
  client hier "$image" --server "$grpc" --json search --id 5 --k 5 > "$work/search-$1-id.json" \
    || fail "search --id 5"
  client hier "$image" --server "$grpc" --json search --image "$query_image" --k 5 \
    > "$work/search-$1-image.json" || fail "search --image $query_image"
}

neighbour_ids() { grep -o '"id":[0-9]*' "$1" | tr '\n' ' '; }

server1="$tag-1"
start_server "$server1"
wait_healthy "$server1"
check_serving "$server1"
pass "container healthy in $health_s s; SERVING through $grpc (gRPC) and $metrics (metrics), both on loopback only"

# --- 6. writes and reads through the published port ----------------------------------------------
if out="$(HIER_TOKEN='' client hier "$image" --server "$grpc" items delete 1 2>&1)"; then
  fail "a write without the token succeeded: $out"
fi
case "$out" in
  *UNAUTHENTICATED* | *PERMISSION_DENIED*) pass "a write without the token is refused (${out%%$'\n'*})" ;;
  *) fail "a write without the token failed, but not for the token: $out" ;;
esac
client hier-bench "$image" --server "$grpc" --method add-vectors --batch 8 --requests 4 \
  --warmup 0 --first-id 1 > "$work/add.log" 2>&1 || { cat "$work/add.log" >&2; fail "hier-bench add-vectors"; }
client hier "$image" --server "$grpc" items add /data/images --first-id 1001 > "$work/add-images.log" 2>&1 \
  || { cat "$work/add-images.log" >&2; fail "hier items add /data/images"; }
count="$(stat_of items)"
model="$(stat_of model)"
[ "$count" = 52 ] || fail "stats: $count items after adding 32 vectors and 20 images"
[ "$model" = check/best ] || fail "stats: serving model '$model', not check/best"
# The image of item 1001, as the client sees it: searching with it finds that item at distance ~0.
key="$(client hier "$image" --server "$grpc" items get 1001 | sed -n 's/^key  *//p')"
query_image="/data/images/$key"
searches 1
[ "$(grep -o '"id":' "$work/search-1-id.json" | wc -l)" -eq 5 ] \
  || fail "search --id 5 --k 5: not 5 neighbours: $(cat "$work/search-1-id.json")"
top="$(grep -o '"neighbours":\[{"id":[0-9]*,[^}]*"distance":[^,}]*' "$work/search-1-image.json" | head -n 1)"
case "$top" in
  *'"id":1001,'*) ;;
  *) fail "search --image '$query_image': the top hit is not item 1001: $(cat "$work/search-1-image.json")" ;;
esac
awk -v d="${top##*:}" 'BEGIN { exit !(d < 0.001) }' \
  || fail "search --image '$query_image': item 1001 at distance ${top##*:}, not ~0"
pass "with the token: 32 vectors and 20 images added; stats: 52 items, model check/best; search --id 5: 5 neighbours; search --image '$key': item 1001 first at distance ${top##*:}"

# The metrics port, with bash's /dev/tcp (no HTTP client needed on the host).
if ! exec 3<> "/dev/tcp/${metrics%:*}/${metrics#*:}"; then fail "cannot connect to $metrics"; fi
printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$metrics" >&3
page="$(timeout 10 cat <&3)" || true
exec 3<&-
line="$(grep -E '^hier_index_items(\{.*\})? ' <<< "$page" | head -n 1)"
[ "${line##* }" = 52 ] || fail "GET /metrics on $metrics: hier_index_items is not 52: '$line'"
pass "GET /metrics: $line"

# --- 7. SIGTERM --------------------------------------------------------------------------------
stop_server() {  # NAME: docker stop -t 90; exit code 0, not OOM-killed; sets stop_s
  local t0 exit_code
  t0=$(now)
  timeout 150 "$docker_cli" stop -t 90 "$1" > /dev/null || fail "docker stop -t 90 $1"
  stop_s=$(($(now) - t0))
  exit_code="$(d inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' "$1")"
  d logs "$1" > "$work/$1.log" 2>&1
  [ "$exit_code" = "0 false" ] \
    || { tail -n 20 "$work/$1.log" >&2; fail "$1 exited with '$exit_code' (code, OOM-killed) after SIGTERM"; }
}
stop_server "$server1"
for phrase in "draining" "wrote the index snapshot" "stopped"; do
  grep -q "$phrase" "$work/$server1.log" \
    || { tail -n 20 "$work/$server1.log" >&2; fail "$server1: its log does not say '$phrase' after SIGTERM"; }
done
pass "docker stop -t 90: exit code 0 in $stop_s s; the log shows the drain and the index snapshot"

# --- 8. a new container on the same volumes ------------------------------------------------------
server2="$tag-2"
start_server "$server2"
wait_healthy "$server2"
check_serving "$server2"
count="$(stat_of items)"
[ "$count" = 52 ] || fail "after the restart stats says $count items, not 52"
searches 2
cmp -s "$work/search-1-id.json" "$work/search-2-id.json" \
  || fail "search --id 5 differs after the restart: $(cat "$work/search-1-id.json") vs $(cat "$work/search-2-id.json")"
[ "$(neighbour_ids "$work/search-1-image.json")" = "$(neighbour_ids "$work/search-2-image.json")" ] \
  || fail "search --image differs after the restart: $(cat "$work/search-1-image.json") vs $(cat "$work/search-2-image.json")"
pass "a new container on the volumes: healthy in $health_s s, 52 items, the same answers to both searches"
stop_server "$server2"

say "passed in $(($(now) - t_start)) s: $image built in $build_s s; $base_note"
