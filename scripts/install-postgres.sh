#!/usr/bin/env bash
# Installs PostgreSQL and pg_cron from Debian's packages when they are missing (needs root or
# sudo). The tests start their own throwaway cluster from these binaries; nothing is configured
# system-wide.
set -euo pipefail

have_initdb() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
pg_version() { basename "$(dirname "$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1)")")"; }

packages=()
if ! have_initdb; then
    packages+=(postgresql postgresql-contrib)
fi
if have_initdb; then
    ver=$(pg_version)
    [ -e "/usr/lib/postgresql/$ver/lib/pg_cron.so" ] || packages+=("postgresql-$ver-cron")
    [ -e "/usr/lib/postgresql/$ver/lib/plpgsql_check.so" ] || packages+=("postgresql-$ver-plpgsql-check")
fi
command -v sqlite3 >/dev/null || packages+=(sqlite3)
# promtool and prometheus: tests/prometheus checks deploy/prometheus and scrapes GET /metrics
command -v promtool >/dev/null || packages+=(prometheus)

if [ ${#packages[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing: ${packages[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
    if ! have_initdb; then
        echo "PostgreSQL binaries still missing after install" >&2
        exit 1
    fi
fi
# pg_cron for the installed server version (known only once PostgreSQL is installed)
ver=$(pg_version)
if [ ! -e "/usr/lib/postgresql/$ver/lib/pg_cron.so" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$ver-cron" >&2
fi
# plpgsql_check: the lint test checks every PL/pgSQL function of ours with it
if [ ! -e "/usr/lib/postgresql/$ver/lib/plpgsql_check.so" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$ver-plpgsql-check" >&2
fi
# The throwaway cluster runs as this OS user when the tests run as root.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi
echo "PostgreSQL $ver with pg_cron and plpgsql_check: ready" >&2
