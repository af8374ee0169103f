#!/usr/bin/env bash
# Builds and installs pgvector (the `vector` extension) for this machine's PostgreSQL from the vendored
# upstream source, when it is not installed yet. Debian bookworm has no pgvector package for PostgreSQL 15;
# elsewhere install it from your platform instead (Debian/Ubuntu `postgresql-NN-pgvector`, Homebrew `pgvector`).
#
# Run it before any PostgreSQL cluster starts: the headers package it installs may upgrade the postgresql
# binaries, and a running server then fails to load its libraries. Needs root (apt-get, make install).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
archive="${PGVECTOR_ARCHIVE:-$here/../vendor/pgvector-0.8.6.tar.gz}"

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ]; then
  echo "install-pgvector: no PostgreSQL under /usr/lib/postgresql" >&2
  exit 1
fi
major="$(basename "$(dirname "$pg_bin")")"
libdir="/usr/lib/postgresql/$major/lib"
if [ -f "$libdir/vector.so" ] && [ -f "/usr/share/postgresql/$major/extension/vector.control" ]; then
  exit 0
fi
if [ ! -f "$archive" ]; then
  echo "install-pgvector: $archive not found (set PGVECTOR_ARCHIVE to pgvector's source archive)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-pgvector: needs root to install the headers and the extension" >&2
  exit 1
fi

echo "--- building pgvector for PostgreSQL $major"
export DEBIAN_FRONTEND=noninteractive
if ! [ -x "/usr/lib/postgresql/$major/bin/pg_config" ] || ! [ -d "/usr/include/postgresql/$major/server" ]; then
  apt-get update -qq
  apt-get install -y -qq "postgresql-server-dev-$major" >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$archive" -C "$work"
src="$(ls -d "$work"/pgvector-*)"
# OPTFLAGS="": the default -march=native would tie the build to this CPU.
make -s -C "$src" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" OPTFLAGS="" -j2 >/dev/null
make -s -C "$src" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" install >/dev/null
echo "pgvector installed into $libdir"
