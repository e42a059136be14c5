#!/usr/bin/env bash
# Regenerates what the workshop guide does not type by hand: the command
# reference in docs/cli (cobra/doc, from the commands' own help) and every
# output between an <!-- output … --> marker and <!-- end --> in docs/*.md,
# made by running those commands in a fresh temporary lab, as root. It also
# checks that every underhood command the guide shows exists and parses.
# With --check it changes nothing and exits 1 when anything is stale.
# Usage: sudo scripts/docs.sh [--check]      (make docs, make docs-check)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

check=() target=docs
case "${1:-}" in
  --check) check=(-check) target=docs-check ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/underhood" ./cmd/underhood
CGO_ENABLED=0 go build -o "$tmp/underhood-init" ./cmd/underhood-init
go build -o "$tmp/underhood-docs" ./cmd/underhood-docs

pages=(README.md docs/*.md)
status=0
"$tmp/underhood-docs" -cli docs/cli -lint "$(IFS=,; echo "${pages[*]}")" "${check[@]}" || status=$?
if [ "$(id -u)" -ne 0 ]; then
  echo "docs: the outputs in docs/*.md come from running the guide's commands, which needs root: sudo make $target" >&2
  exit $(( status ? status : 2 ))
fi
"$tmp/underhood-docs" -underhood "$tmp/underhood" -pages docs "${check[@]}" || status=$?
exit $status
