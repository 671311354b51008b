#!/usr/bin/env bash
# Builds the image of the second PostgreSQL test lane: Debian 13 (trixie) with its own
# postgresql-17 and postgresql-17-cron packages, imported from a debootstrap tree (no registry
# pull, no Dockerfile). Idempotent: does nothing when the image exists. Needs root or sudo.
#
# Starts a Docker daemon when none answers: `dockerd --bridge=none --iptables=false` (containers
# use the host network only; the tests' server listens on 127.0.0.1). It stays running for the
# tests; its log is /tmp/scheduler-dockerd.log and its pid /tmp/scheduler-dockerd.pid.
#
# Variables: SCHEDULER_TEST_IMAGE (default scheduler-test-pg17-cron:latest), DEBIAN_MIRROR
# (default: the Debian mirror apt already uses on this machine).
set -euo pipefail

IMAGE=${SCHEDULER_TEST_IMAGE:-scheduler-test-pg17-cron:latest}
SUITE=trixie
PACKAGES=postgresql-17,postgresql-17-cron,postgresql-17-plpgsql-check
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
# a daemon that already answers (and its client) is used as it is
if ! { command -v docker >/dev/null && $SUDO docker info >/dev/null 2>&1; }; then
    command -v dockerd >/dev/null || missing+=(docker.io)
fi
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! $SUDO docker info >/dev/null 2>&1; then
    echo "starting dockerd (host network only), log /tmp/scheduler-dockerd.log" >&2
    $SUDO sh -c 'nohup dockerd --bridge=none --iptables=false >/tmp/scheduler-dockerd.log 2>&1 & echo $! >/tmp/scheduler-dockerd.pid'
    for _ in $(seq 1 120); do
        $SUDO docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! $SUDO docker info >/dev/null 2>&1; then
        echo "dockerd did not answer; its log:" >&2
        tail -n 40 /tmp/scheduler-dockerd.log >&2
        exit 1
    fi
fi

# An image of an earlier shape (without plpgsql_check, which the lint test needs) is rebuilt.
if [ -n "$($SUDO docker images -q "$IMAGE")" ]; then
    if $SUDO docker run --rm --network none "$IMAGE" test -e /usr/lib/postgresql/17/lib/plpgsql_check.so; then
        echo "image $IMAGE: already built" >&2
        exit 0
    fi
    echo "image $IMAGE: lacks plpgsql_check, rebuilding" >&2
fi

# The Debian mirror apt already uses here (deb822 "URIs:" or one-line "deb" sources).
mirror_of_apt() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] && cat "$f"
    done | awk '
        /^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }
        /^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }
    ' | grep -E '/debian/?$' | head -n 1 || true
}
MIRROR=${DEBIAN_MIRROR:-$(mirror_of_apt)}
if [ -z "$MIRROR" ]; then
    echo "no Debian mirror found in apt's sources; set DEBIAN_MIRROR" >&2
    exit 1
fi

root=$(mktemp -d /tmp/scheduler-pg17-root.XXXXXX)
trap '$SUDO rm -rf "$root"' EXIT
echo "debootstrap $SUITE ($PACKAGES) from $MIRROR" >&2
$SUDO debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >/tmp/scheduler-debootstrap.log 2>&1 || {
    tail -n 40 /tmp/scheduler-debootstrap.log >&2
    exit 1
}
# Smaller image: no package lists, caches, documentation or locales but C.
$SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/log/*.log
# ... and no JIT (LLVM and its z3 are 150 MB; the tests' server runs with jit = off, and
# PostgreSQL loads llvmjit.so only for JIT)
$SUDO rm -rf "$root"/usr/lib/postgresql/17/lib/llvmjit* "$root"/usr/lib/postgresql/17/lib/bitcode \
    "$root"/usr/lib/*-linux-gnu/libLLVM* "$root"/usr/lib/*-linux-gnu/libz3.so*
test -x "$root/usr/lib/postgresql/17/bin/postgres"
test -e "$root/usr/lib/postgresql/17/lib/pg_cron.so"
test -e "$root/usr/lib/postgresql/17/lib/plpgsql_check.so"
$SUDO tar -C "$root" -c . | $SUDO docker import \
    --change 'USER postgres' --change 'ENV PATH=/usr/lib/postgresql/17/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$IMAGE" >/dev/null
echo "image $IMAGE: built ($($SUDO docker images --format '{{.Size}}' "$IMAGE"))" >&2
