#!/usr/bin/env bash
# Installs what underhood's build, demo and tests need on a Debian or Ubuntu
# machine. Idempotent: it only installs what is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: needs root to install packages: run 'sudo make setup' (or sudo $0)" >&2
  exit 2
fi

need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v lsns >/dev/null 2>&1 || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  echo "setup: Go is at /usr/local/go/bin but not on PATH; add it: export PATH=\$PATH:/usr/local/go/bin" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup: Go is missing: install Go 1.24 or newer (https://go.dev/doc/install), then run this again" >&2
  exit 1
fi
echo "setup: ready ($(go version | cut -d' ' -f3), BusyBox at /bin/busybox)"
