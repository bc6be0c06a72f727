#!/usr/bin/env bash
# Makes podman work on a Debian/Ubuntu machine (or a container sandbox) for the sink's image:
# installs podman and runc from the distribution's packages when they are missing, and writes
# /etc/containers/containers.conf with the two settings such machines need:
#   [containers] default_ulimits = []        (no ulimit the sandbox may refuse to raise)
#   [engine]     cgroup_manager = "cgroupfs" (no systemd to ask for cgroups)
# Every podman call of kafka/container/ and the container test then runs `podman --runtime runc`.
#
# Idempotent: run it as often as you like. Needs root (apt-get, /etc). See kafka/docs/image.md.
set -euo pipefail

CONF=/etc/containers/containers.conf

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-podman.sh: run it as root (it installs packages and writes $CONF)" >&2
    exit 1
fi

# Another apt/dpkg may be running (e.g. an install started in the background): wait for it
# rather than fail on its lock.
wait_for_dpkg() {
    local waited=0
    # Without fuser (psmisc), apt's own DPkg::Lock::Timeout below does the waiting.
    command -v fuser >/dev/null 2>&1 || return 0
    while fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
        >/dev/null 2>&1; do
        if [ "$waited" -eq 0 ]; then
            echo "setup-podman.sh: waiting for another apt/dpkg to finish..." >&2
        fi
        waited=$((waited + 2))
        if [ "$waited" -ge 1800 ]; then
            echo "setup-podman.sh: apt/dpkg still locked after 30 minutes; stop it or retry" >&2
            exit 1
        fi
        sleep 2
    done
}

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    wait_for_dpkg
    # -o DPkg::Lock::Timeout: apt waits for the lock too, should one be taken in between.
    apt-get -o DPkg::Lock::Timeout=1800 update
    wait_for_dpkg
    apt-get -o DPkg::Lock::Timeout=1800 install -y --no-install-recommends "${missing[@]}"
fi
wait_for_dpkg

want='# Written by kafka/container/setup-podman.sh (snowpipe-kafka): podman on a machine without
# systemd or the right to raise ulimits. Use: podman --runtime runc ...
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
'
mkdir -p /etc/containers
if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$(printf '%s' "$want")" ]; then
    echo "setup-podman.sh: $CONF already set"
else
    # Someone else's file is kept (once); an older one of ours is simply replaced.
    if [ -f "$CONF" ] && [ ! -f "$CONF.before-snowpipe" ] \
        && ! head -n 1 "$CONF" | grep -q '^# Written by kafka/container/setup-podman.sh'; then
        cp -p "$CONF" "$CONF.before-snowpipe"
        echo "setup-podman.sh: kept the previous $CONF as $CONF.before-snowpipe"
    fi
    printf '%s' "$want" >"$CONF"
    echo "setup-podman.sh: wrote $CONF"
fi

podman --runtime runc info --format '{{.Host.CgroupManager}} {{.Store.GraphDriverName}}' >/dev/null
echo "setup-podman.sh: podman $(podman --version | awk '{print $3}') with runc $(runc --version | awk 'NR==1{print $3}') ready"
