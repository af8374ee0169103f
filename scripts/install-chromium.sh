#!/usr/bin/env bash
# Installs Chromium for the browser tests (test/browser, driven by playwright-core) from Debian's package,
# when it is not installed yet: playwright's own browser download is not used (nothing but the package
# registries is reachable). Prints the browser's version. Needs root (apt-get).
#
# Elsewhere, install Chromium from your platform and point the tests at it with PARLEY_CHROMIUM=/path/to/chromium.
set -euo pipefail
binary="${PARLEY_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$binary" ]; then
  if [ "$binary" != /usr/bin/chromium ]; then
    echo "install-chromium: $binary (PARLEY_CHROMIUM) is not there" >&2
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "install-chromium: needs root to install the Debian package chromium" >&2
    exit 1
  fi
  echo "--- installing Chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# The Debian wrapper script prints a shell warning on some machines before the version: keep the last line.
"$binary" --version 2>/dev/null | tail -n 1
