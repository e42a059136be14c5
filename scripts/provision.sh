#!/usr/bin/env bash
# provision: makes a Debian or Ubuntu machine (the workshop's Vagrant VM, or
# any other) ready for the workshop: a static BusyBox, a Go toolchain as new
# as go.mod asks for, and underhood built from a checkout and installed in
# $PROVISION_PREFIX/bin. Then it says what to run first.
#
# Idempotent: a second run installs nothing and rebuilds underhood only.
#
# Go: the distribution's golang-go is often older than go.mod's "go" line. A
# Go of 1.21 or newer fetches the toolchain go.mod names by itself
# (GOTOOLCHAIN=auto); an older one (Debian 12 has 1.19) downloads that same
# toolchain, which the Go module proxy serves as the module
# golang.org/toolchain, with 'go mod download', which checks it against the
# checksum database. Either way only the Go module proxy is used.
#
# Environment:
#   PROVISION_SRC     the underhood checkout to build (the one holding this script)
#   PROVISION_PREFIX  where underhood goes (/usr/local)
#   PROVISION_CGROUP  v1: boot the next time with systemd's cgroup v1 layout;
#                     v2: undo that; unset: leave the boot command line alone
#   PROVISION_NO_APT  1: never run apt-get; fail if a package is missing
#   PROVISION_VM      how the machine was made (vagrant, lima, multipass,
#                     cloud, …), written to /etc/underhood/provisioned for
#                     underhood doctor; unset: manual
set -euo pipefail

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and /usr/local/bin/underhood): run it with sudo"

SRC=${PROVISION_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
PREFIX=${PROVISION_PREFIX:-/usr/local}
CGROUP=${PROVISION_CGROUP:-}
NO_APT=${PROVISION_NO_APT:-0}
VM=${PROVISION_VM:-manual}
GRUB_DROPIN=/etc/default/grub.d/99-underhood-cgroup-v1.cfg
V1_ARGS="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"

grep -qs '^module github.com/underhood/underhood$' "$SRC/go.mod" ||
  die "no underhood checkout at $SRC: set PROVISION_SRC to the folder holding go.mod"
case $CGROUP in "" | v1 | v2) ;; *) die "PROVISION_CGROUP=$CGROUP: want v1, v2 or nothing" ;; esac
[[ $VM =~ ^[a-z0-9-]+$ ]] || die "PROVISION_VM=$VM: want a word such as vagrant, lima, multipass or cloud"

# --- packages ----------------------------------------------------------------

# is_static PATH: an ELF with no dynamic loader named near its start, where
# a dynamic binary keeps it (.interp); no binutils needed.
is_static() {
  [ -x "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] &&
    ! head -c 4096 "$1" | grep -qa '/ld-'
}

# Go binaries that the distribution put outside $PATH.
find_go() {
  local g
  for g in "$(command -v go || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [ -n "$g" ] && [ -x "$g" ] && { echo "$g"; return; }
  done
  return 0
}

need=()
is_static /bin/busybox || need+=(busybox-static)
[ -e /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
[ -n "$(find_go)" ] || need+=(golang-go)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$NO_APT" = 1 ] && die "missing ${need[*]} and PROVISION_NO_APT=1: install them first"
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when they are missing or a day old.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    apt-get update -qq
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  say "packages: BusyBox, CA certificates and Go are there"
fi
is_static /bin/busybox || die "/bin/busybox is not a static BusyBox: apt-get install busybox-static"

# --- Go ------------------------------------------------------------------------

# The Go go.mod asks for: its toolchain line if any, else its go line.
want=$(sed -n 's/^toolchain go\([0-9.]*\)$/\1/p' "$SRC/go.mod")
[ -n "$want" ] || want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$SRC/go.mod")
[ -n "$want" ] || die "no go line in $SRC/go.mod"

# version_ge A B: A >= B for dotted versions such as 1.22.2 and 1.26.8.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }

GO=$(find_go)
[ -n "$GO" ] || die "no go after installing golang-go"
# Asked from / with GOTOOLCHAIN=local: in the checkout a Go 1.21+ would
# answer for the toolchain it switches to.
have=$(cd / && GOTOOLCHAIN=local "$GO" env GOVERSION 2>/dev/null | sed 's/^go//') || true
[ -n "$have" ] || have=$("$GO" version | sed -n 's/^go version go\([0-9.]*\).*/\1/p')
case $(uname -m) in
  x86_64) goarch=amd64 ;;
  aarch64 | arm64) goarch=arm64 ;;
  *) die "no Go toolchain for $(uname -m) here: the workshop runs on x86_64 and arm64" ;;
esac
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
if version_ge "$have" "$want"; then
  say "Go: $GO is go$have, go.mod wants go$want"
elif version_ge "$have" 1.21; then
  say "Go: $GO is go$have, go.mod wants go$want: GOTOOLCHAIN=auto fetches it through the Go module proxy"
  export GOTOOLCHAIN=auto
else
  mod=golang.org/toolchain@v0.0.1-go$want.linux-$goarch
  say "Go: $GO is go$have, too old to switch toolchains: fetching $mod (go mod download; from the module cache once there)"
  dir=$(cd / && GO111MODULE=on GOTOOLCHAIN=local "$GO" mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -f "$dir/bin/go" ] || die "go mod download $mod gave no $dir/bin/go"
  # Module zips keep no file modes: set the executable bits, as Go's own
  # toolchain switch does for this module.
  find "$dir/bin" "$dir/pkg/tool" -type f ! -perm -u+x -exec chmod a+x {} +
  GO=$dir/bin/go
  say "Go: using $GO ($("$GO" env GOVERSION))"
fi

# --- underhood -----------------------------------------------------------------

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
say "building underhood from $SRC"
(cd "$SRC" && CGO_ENABLED=0 "$GO" build -trimpath -o "$out/underhood" ./cmd/underhood)
install -D -m 0755 "$out/underhood" "$PREFIX/bin/underhood"
say "installed $PREFIX/bin/underhood"
mkdir -p /etc/underhood
printf '# written by scripts/provision.sh; underhood doctor reads it\nway=%s\nsource=%s\n' "$VM" "$SRC" >/etc/underhood/provisioned

# --- cgroup layout at the next boot ------------------------------------------

layout_now() {
  case $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) in
    cgroup2fs) echo "v2" ;;
    tmpfs) if [ -d /sys/fs/cgroup/unified ]; then echo "hybrid (v1 controllers)"; else echo "v1"; fi ;;
    *) echo "none mounted" ;;
  esac
}

grub_changed=0
case $CGROUP in
  v1)
    want_cfg="GRUB_CMDLINE_LINUX_DEFAULT=\"\${GRUB_CMDLINE_LINUX_DEFAULT} $V1_ARGS\""
    if [ "$(cat "$GRUB_DROPIN" 2>/dev/null)" != "$want_cfg" ]; then
      mkdir -p "$(dirname "$GRUB_DROPIN")"
      printf '%s\n' "$want_cfg" >"$GRUB_DROPIN"
      grub_changed=1
    fi
    ;;
  v2)
    if [ -e "$GRUB_DROPIN" ]; then
      rm -f "$GRUB_DROPIN"
      grub_changed=1
    fi
    ;;
esac
if [ "$grub_changed" = 1 ]; then
  if command -v update-grub >/dev/null; then
    update-grub 2>/dev/null
    say "boot command line changed for cgroup $CGROUP: it takes effect after a reboot (sudo reboot, or vagrant reload)"
  else
    say "no update-grub here: put '$V1_ARGS' on the kernel command line by hand for cgroup v1"
  fi
fi

# --- what next -----------------------------------------------------------------

say "cgroup layout now: $(layout_now)"
echo
echo "underhood is ready. Start with:"
echo "  sudo underhood doctor      # checks this machine: root, namespaces, cgroup layout"
echo "  sudo underhood steps       # the steps and where you are"
if [ "$goarch" = amd64 ]; then
  echo "  sudo underhood download    # step 1 (offline: sudo underhood download --from /bin/busybox)"
else
  echo "  sudo underhood download --from /bin/busybox   # step 1: busybox.net has no arm64 build"
fi
