#!/usr/bin/env bash
# Installs what underhood's build, demo and tests need on a Debian or Ubuntu
# machine. Idempotent: it only installs what is missing.
set -euo pipefail

need=()
# A static BusyBox: Debian's busybox package is dynamically linked.
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
command -v lsns >/dev/null 2>&1 || need+=(util-linux)
# The industry tools the image and runtime tests compare against.
for t in umoci skopeo runc crun; do command -v "$t" >/dev/null 2>&1 || need+=("$t"); done
if [ "${#need[@]}" -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "setup: ${need[*]} missing, and installing needs root: run 'sudo make setup' (tests that need them are skipped meanwhile)" >&2
elif [ "${#need[@]}" -gt 0 ]; then
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
  echo "setup: Go is missing: install Go 1.26.8 (https://go.dev/doc/install; a Go from 1.21 on fetches it by itself), then run this again" >&2
  exit 1
fi
if [ -x /bin/busybox ]; then
  echo "setup: ready ($(go version | cut -d' ' -f3), BusyBox at /bin/busybox)"
else
  echo "setup: Go ready ($(go version | cut -d' ' -f3)); no /bin/busybox yet"
fi
