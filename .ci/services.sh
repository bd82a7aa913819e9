#!/usr/bin/env bash
# Install and start the real local services singkit's tests run against.
#
# Idempotent: installs only what is missing, starts dockerd only if no engine answers.
# Registries and Azurite are NOT started here: the pytest fixtures (tests/services.py)
# start them per test session on free loopback ports, so tests behave the same on a
# developer machine. This script only makes their binaries available.
#
# Writes .ci/services.env (export lines; `source` it) and prints it on stdout.
# Progress goes to stderr. Safe with CI=true and no stdin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.ci/.cache"
ENV_FILE="$ROOT/.ci/services.env"
AZURITE_VERSION="3.35.0"     # newer releases need Node 22; Debian/this machine has Node 20
AZURITE_DIR="$CACHE/azurite"
DOCKER_SOCK="/var/run/docker.sock"
# fonts-liberation: chromium only recommends it, and headless screenshots need real glyphs.
APT_PACKAGES=(docker.io docker-registry busybox-static apache2-utils chromium fonts-liberation)

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

SUDO=()
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "run as root (or install sudo): apt-get and dockerd need it"
    SUDO=(sudo -n)
fi

mkdir -p "$CACHE"
T0="$(now)"

# --- Debian packages -------------------------------------------------------------------
apt_updated=0
apt_install() {
    # apt-get update at most once per run, and only when something is missing.
    if [[ $apt_updated -eq 0 ]]; then
        log "apt-get update"
        # An unreachable extra source makes update exit non-zero; Debian's own may still be fine.
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 </dev/null >&2 ||
            log "warning: apt-get update reported errors; trying the install anyway"
        apt_updated=1
    fi
    log "apt-get install $*"
    # --no-install-recommends: docker.io recommends needrestart (interactive) and
    # chromium recommends a desktop's worth of packages; neither is needed headless.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
        apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$@" </dev/null >&2
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
command -v npm >/dev/null || missing+=(nodejs npm)
command -v make >/dev/null || missing+=(make)   # .ci/run calls `make test`
if ((${#missing[@]})); then
    t="$(now)"; apt_install "${missing[@]}"; log "apt done in $(elapsed "$t") s"
else
    log "apt packages already installed"
fi

# --- Azurite (npm, pinned, cached in .ci/.cache) ----------------------------------------
AZURITE_BIN="$AZURITE_DIR/node_modules/.bin/azurite-blob"
azurite_version() {
    node -p "require('$AZURITE_DIR/node_modules/azurite/package.json').version" 2>/dev/null || true
}
if [[ -x "$AZURITE_BIN" && "$(azurite_version)" == "$AZURITE_VERSION" ]]; then
    log "azurite $AZURITE_VERSION already installed"
else
    t="$(now)"; log "npm install azurite@$AZURITE_VERSION"
    mkdir -p "$AZURITE_DIR"
    npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION" </dev/null >&2
    [[ -x "$AZURITE_BIN" ]] || die "npm did not install $AZURITE_BIN"
    log "azurite installed in $(elapsed "$t") s"
fi

# --- Docker Engine ----------------------------------------------------------------------
engine_up() {  # engine_up [HOST]: does an engine answer there (default: our socket)?
    # Debian's client, not whatever newer static client may be first on PATH.
    local docker=/usr/bin/docker
    [[ -x $docker ]] || docker=docker
    timeout 10 "$docker" -H "${1:-unix://$DOCKER_SOCK}" version --format '{{.Server.Version}}' \
        </dev/null >/dev/null 2>&1
}
storage_driver() {
    # overlay2 made each Dockerfile step ~10x faster than vfs here (0.15 s vs 2.4 s for a
    # one-ENV build); vfs works on any filesystem (overlay2 does not stack on overlayfs).
    if [[ -n ${SINGKIT_DOCKER_STORAGE_DRIVER:-} ]]; then echo "$SINGKIT_DOCKER_STORAGE_DRIVER"; return; fi
    local fs; fs="$(stat -f -c %T /var/lib/docker 2>/dev/null || stat -f -c %T /var/lib)"
    if grep -qw overlay /proc/filesystems && [[ $fs != overlayfs ]]; then echo overlay2; else echo vfs; fi
}
start_dockerd() {  # start_dockerd DRIVER: 0 once the engine answers, 1 if dockerd gave up
    local driver=$1
    log "starting dockerd (storage driver $driver)"
    # No iptables/bridge: there is no network to give containers, and the kernel may lack the
    # netfilter modules. All fds are redirected so the daemon never holds CI's pipes open.
    "${SUDO[@]}" setsid dockerd --iptables=false --ip6tables=false --bridge=none \
        --storage-driver="$driver" --host "unix://$DOCKER_SOCK" \
        </dev/null >>"$CACHE/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    disown || true
    for _ in $(seq 1 120); do
        engine_up && return 0
        [[ -d /proc/$DOCKERD_PID ]] || return 1   # exited, e.g. the driver is unsupported
        sleep 0.5
    done
    return 1
}
DOCKER_HOST_VALUE="unix://$DOCKER_SOCK"
if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "$DOCKER_HOST_VALUE" ]] && engine_up "$DOCKER_HOST"; then
    DOCKER_HOST_VALUE="$DOCKER_HOST"   # a developer's own engine (rootless, remote, ...)
    log "docker engine already responding on \$DOCKER_HOST=$DOCKER_HOST"
elif engine_up; then
    log "docker engine already responding on $DOCKER_SOCK"
else
    t="$(now)"
    driver="$(storage_driver)"
    if ! start_dockerd "$driver"; then
        # Stop only the daemon this script started, if it is still hanging around.
        if [[ -d /proc/$DOCKERD_PID ]]; then
            "${SUDO[@]}" kill "$DOCKERD_PID" 2>/dev/null || true
            for _ in $(seq 1 20); do [[ -d /proc/$DOCKERD_PID ]] || break; sleep 0.5; done
        fi
        if [[ $driver == vfs ]] || ! start_dockerd vfs; then
            tail -n 30 "$CACHE/dockerd.log" >&2 || true
            die "dockerd did not answer on $DOCKER_SOCK within 60 s (log: $CACHE/dockerd.log)"
        fi
    fi
    log "dockerd up in $(elapsed "$t") s (log: $CACHE/dockerd.log)"
fi
# A non-root developer needs access to the socket the daemon created.
[[ $EUID -eq 0 || $DOCKER_HOST_VALUE != "unix://$DOCKER_SOCK" || -w $DOCKER_SOCK ]] || log "warning: $DOCKER_SOCK not writable by $(id -un); add yourself to the docker group"

# --- Environment for the tests ----------------------------------------------------------
CHROMIUM_BIN="$(command -v chromium || true)"
BUSYBOX_BIN="/bin/busybox"
cat >"$ENV_FILE.tmp" <<EOF
# Written by .ci/services.sh; source it. The pytest fixtures (tests/services.py) read these.
export DOCKER_HOST=$DOCKER_HOST_VALUE
export SINGKIT_TEST_AZURITE_CMD=$AZURITE_BIN
export SINGKIT_TEST_REGISTRY_CMD=$(command -v docker-registry)
export SINGKIT_TEST_HTPASSWD_CMD=$(command -v htpasswd)
export SINGKIT_TEST_BUSYBOX=$BUSYBOX_BIN
export SINGKIT_TEST_CHROMIUM=$CHROMIUM_BIN
EOF
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "services ready in $(elapsed "$T0") s; environment in ${ENV_FILE#"$ROOT/"}"
cat "$ENV_FILE"
