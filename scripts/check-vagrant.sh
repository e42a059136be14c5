#!/usr/bin/env bash
# check-vagrant: the checks of the Vagrant set-up that need no hypervisor.
#   1. vagrant validate -p on vagrant/Vagrantfile (ruby -c where Debian has
#      no vagrant package)
#   2. shellcheck on every shell script of the repository
#   3. scripts/provision.sh in a Debian 12 minbase tree (debootstrap, cached
#      in $CHECK_DIR), run by chroot against this checkout: it must install
#      BusyBox and Go through apt and the Go module proxy, install underhood,
#      do nothing the second time, and handle PROVISION_CGROUP=v1 and v2;
#      then underhood doctor and underhood steps must run in the tree.
# Prints PASS or FAIL per check; exits 1 on any FAIL. Needs root (debootstrap,
# chroot, mounts), which CI is.
#
# Environment:
#   CHECK_DIR     where the cached tree and logs go (build/vagrant-check)
#   CHECK_MIRROR  the Debian mirror for debootstrap (http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_DIR=${CHECK_DIR:-build/vagrant-check}
CHECK_MIRROR=${CHECK_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

say() { printf 'vagrant-check: %s\n' "$*"; }
die() { printf 'vagrant-check: %s\n' "$*" >&2; exit 1; }

failures=0
pass() { printf '  PASS  %-22s %s\n' "$1" "${2:-}"; }
fail() { printf '  FAIL  %-22s %s\n' "$1" "${2:-}"; failures=$((failures + 1)); }

declare -a timings=()
t0=0
phase() { t0=$(date +%s%N); say "$*"; }
phase_end() {
  timings+=("$(awk -v a="$t0" -v b="$(date +%s%N)" -v n="$1" 'BEGIN { printf "%-14s %6.1f s", n, (b - a) / 1e9 }')")
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts): sudo make vagrant-check"

# --- tools ---------------------------------------------------------------------

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# Debian has vagrant (bookworm: 2.3.4); where a distribution has none,
# fall back to a Ruby syntax check of the Vagrantfile.
install_tools() {
  local need=()
  command -v shellcheck >/dev/null || need+=(shellcheck)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v unshare >/dev/null || need+=(util-linux)
  if ! command -v vagrant >/dev/null; then
    # Read whole first: grep -q would end apt-cache early, failing the pipe.
    local policy
    policy=$(apt-cache policy vagrant 2>/dev/null || true)
    if grep -q 'Candidate: [0-9]' <<<"$policy"; then
      need+=(vagrant)
    elif ! command -v ruby >/dev/null; then
      need+=(ruby)
    fi
  fi
  if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]}"
    apt_install "${need[@]}"
  fi
}

# --- 1. the Vagrantfile --------------------------------------------------------

# What the Vagrantfile must define, read through Vagrant's own Ruby API
# (vagrant status would need a hypervisor): machine v2, primary, and v1, not
# started by default, which provisions for cgroup v1, reboots and shows the
# layout; both build this checkout, mounted where PROVISION_SRC says.
VAGRANTFILE_SHAPE='
require "vagrant"
env = Vagrant::Environment.new(cwd: Dir.pwd)
errs = []
errs << "machines #{env.machine_names.inspect}, want [:v2, :v1]" unless env.machine_names == [:v2, :v1]
errs << "primary #{env.primary_machine_name.inspect}, want :v2" unless env.primary_machine_name == :v2
opts = env.vagrantfile.config.vm.defined_vms
errs << "v1 starts with vagrant up: want autostart: false" unless opts[:v1] && opts[:v1].options[:autostart] == false
want = { v2: [["underhood", "v2"]], v1: [["underhood", "v1"], ["reboot", nil], ["layout", nil]] }
box = nil
want.each do |name, provs|
  c = env.vagrantfile.machine_config(name, nil, nil, nil, false)[:config]
  box = c.vm.box
  got = c.vm.provisioners.map { |x| [x.name.to_s, x.config.env["PROVISION_CGROUP"]] }
  errs << "#{name} provisioners #{got.inspect}, want #{provs.inspect}" unless got == provs
  first = c.vm.provisioners.first
  errs << "#{name} does not run ../scripts/provision.sh" unless first && first.config.path == "../scripts/provision.sh"
  src = first && first.config.env["PROVISION_SRC"]
  folder = c.vm.synced_folders[src]
  errs << "#{name}: PROVISION_SRC=#{src.inspect} is not the repository synced from .." unless folder && folder[:hostpath] == ".." && !folder[:disabled]
  reboot = c.vm.provisioners.find { |x| x.name.to_s == "reboot" }
  errs << "#{name}: the reboot provisioner does not reboot" if reboot && !reboot.config.reboot
end
abort errs.join("; ") unless errs.empty?
puts "box #{box}; v2 (primary) provisions for cgroup v2; v1 (autostart off) provisions for v1, reboots, shows the layout"
'

check_vagrantfile() {
  local out
  if command -v vagrant >/dev/null; then
    # VAGRANT_HOME keeps vagrant's state out of the caller's home.
    if out=$(cd vagrant && VAGRANT_HOME="$PWD/../$CHECK_DIR/vagrant.d" VAGRANT_CHECKPOINT_DISABLE=1 \
      vagrant validate -p 2>&1); then
      pass vagrant-validate "$(vagrant --version): $(tail -1 <<<"$out")"
    else
      fail vagrant-validate "$out"
    fi
    if out=$(cd vagrant && VAGRANT_HOME="$PWD/../$CHECK_DIR/vagrant.d" VAGRANT_CHECKPOINT_DISABLE=1 \
      ruby -e "$VAGRANTFILE_SHAPE" 2>&1); then
      pass vagrant-machines "$out"
    else
      fail vagrant-machines "$out"
    fi
  else
    say "no vagrant package in this distribution: checking the Vagrantfile's Ruby syntax only"
    if out=$(ruby -c vagrant/Vagrantfile 2>&1); then
      pass vagrantfile-syntax "ruby -c: $out"
    else
      fail vagrantfile-syntax "$out"
    fi
  fi
}

# --- 2. shellcheck -------------------------------------------------------------

shell_scripts() {
  local f first
  find . -path ./.git -prune -o -path ./build -prune -o -type f -print |
    while read -r f; do
      case $f in *.sh) echo "$f"; continue ;; esac
      first=$(head -n 1 "$f" 2>/dev/null | tr -d '\0' || true)
      if grep -qE '^#!.*(/|env )(ba|busybox )?sh\b' <<<"$first"; then echo "$f"; fi
    done | LC_ALL=C sort
}

check_shellcheck() {
  local scripts out
  mapfile -t scripts < <(shell_scripts)
  if out=$(shellcheck "${scripts[@]}" 2>&1); then
    pass shellcheck "${#scripts[@]} scripts: ${scripts[*]}"
  else
    fail shellcheck "$out"
  fi
}

# --- 3. provision.sh in a Debian 12 tree ---------------------------------------

# The pristine tree: debootstrap --variant=minbase, plus CA certificates.
# BusyBox and Go are left out on purpose: provision.sh must install them.
base_tree() {
  local base=$CHECK_DIR/$SUITE-minbase
  if [ -e "$base/.underhood-complete" ]; then
    say "tree: cached $base"
    return
  fi
  rm -rf "$base"
  mkdir -p "$CHECK_DIR"
  say "tree: debootstrap --variant=minbase $SUITE (about half a minute)"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$base" "$CHECK_MIRROR" \
    >"$CHECK_DIR/debootstrap.log" 2>&1 || { tail -20 "$CHECK_DIR/debootstrap.log"; die "debootstrap failed"; }
  touch "$base/.underhood-complete"
}

# in_tree LOG CMD...: runs CMD chrooted in a throw-away overlay of the tree,
# in a mount namespace of its own (proc, sys, dev and this checkout, read
# only, at /src), so nothing is left mounted and the cached tree stays as
# it was. The overlay's upper layer is $CHECK_DIR/upper, kept between calls
# of one run so the second provision sees the first one's work.
in_tree() {
  local log=$1
  shift
  # The inner script gets its values as arguments: single quotes on purpose.
  # shellcheck disable=SC2016
  unshare --mount --propagation private bash -euo pipefail -c '
    base=$1 upper=$2 src=$3 modcache=$4
    shift 4
    root=$upper/../root
    mkdir -p "$upper/data" "$upper/work" "$root" "$modcache"
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$upper/data,workdir=$upper/work" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --make-rslave "$root/sys"
    mount --rbind /dev "$root/dev"
    mount --make-rslave "$root/dev"
    mkdir -p "$root/src" "$root/root/go/pkg/mod"
    mount --bind "$src" "$root/src"
    mount -o remount,bind,ro "$root/src"
    mount --bind "$modcache" "$root/root/go/pkg/mod"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # Trust what this machine trusts (a proxy of its network may have a CA
    # of its own) for the Go module proxy and apt alike.
    cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/ca-certificates.crt"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 "$@"
  ' in_tree "$PWD/$CHECK_DIR/$SUITE-minbase" "$PWD/$CHECK_DIR/upper" "$PWD" "$PWD/$CHECK_DIR/gomodcache" "$@" \
    >"$log" 2>&1
}

check_provision() {
  local d=$CHECK_DIR rc
  rm -rf "$d/upper" "$d/root"
  # Go's module cache is read-only on purpose; the toolchain it holds is
  # kept between runs of this check (delete $d/gomodcache to fetch it again).

  rc=0
  in_tree "$d/provision-1.log" env PROVISION_SRC=/src bash /src/scripts/provision.sh || rc=$?
  sed 's/^/    | /' "$d/provision-1.log"
  if [ "$rc" != 0 ]; then
    fail provision-first "exit $rc (log: $d/provision-1.log)"
  elif ! grep -q 'installing .*busybox-static' "$d/provision-1.log"; then
    fail provision-first "did not install busybox-static through apt"
  elif ! grep -q '^provision: installed /usr/local/bin/underhood$' "$d/provision-1.log"; then
    fail provision-first "no 'installed /usr/local/bin/underhood'"
  elif ! grep -q 'sudo underhood doctor' "$d/provision-1.log"; then
    fail provision-first "it does not say what to run first"
  else
    pass provision-first "$(grep -m1 '^provision: Go:' "$d/provision-1.log" | sed 's/^provision: //')"
  fi

  if [ -x "$d/upper/data/usr/local/bin/underhood" ]; then
    pass underhood-installed "/usr/local/bin/underhood, $(du -h "$d/upper/data/usr/local/bin/underhood" | cut -f1)"
  else
    fail underhood-installed "no /usr/local/bin/underhood in the tree"
  fi

  rc=0
  # The second run may use neither apt nor the network: GOPROXY=off.
  in_tree "$d/provision-2.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 GOPROXY=off bash /src/scripts/provision.sh || rc=$?
  if [ "$rc" != 0 ]; then
    sed 's/^/    | /' "$d/provision-2.log"
    fail provision-again "exit $rc (log: $d/provision-2.log)"
  elif grep -q 'installing' "$d/provision-2.log"; then
    fail provision-again "installed again: $(grep 'installing' "$d/provision-2.log")"
  else
    pass provision-again "idempotent: no apt (PROVISION_NO_APT=1), no network (GOPROXY=off), rebuilt"
  fi

  rc=0
  in_tree "$d/provision-v1.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 GOPROXY=off PROVISION_CGROUP=v1 \
    sh -c 'bash /src/scripts/provision.sh && cat /etc/default/grub.d/99-underhood-cgroup-v1.cfg' || rc=$?
  if [ "$rc" = 0 ] && grep -q 'systemd.unified_cgroup_hierarchy=0' "$d/provision-v1.log" &&
    grep -q 'no update-grub here' "$d/provision-v1.log"; then
    rc=0
    in_tree "$d/provision-v2.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 GOPROXY=off PROVISION_CGROUP=v2 \
      sh -c 'bash /src/scripts/provision.sh && ! test -e /etc/default/grub.d/99-underhood-cgroup-v1.cfg' || rc=$?
    if [ "$rc" = 0 ]; then
      pass provision-cgroup "v1 writes the GRUB drop-in (no grub in the tree: says so), v2 removes it"
    else
      fail provision-cgroup "PROVISION_CGROUP=v2: exit $rc: $(tail -3 "$d/provision-v2.log")"
    fi
  else
    fail provision-cgroup "PROVISION_CGROUP=v1: exit $rc: $(tail -3 "$d/provision-v1.log")"
  fi

  # Ubuntu 24.04, the Vagrant box, has golang-go 1.22.2: a Go that switches
  # toolchains itself. The same Go, fetched as a toolchain module, stands in.
  rc=0
  # shellcheck disable=SC2016
  in_tree "$d/provision-go122.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 sh -c '
    mod=golang.org/toolchain@v0.0.1-go1.22.2.linux-amd64
    dir=$(cd / && GO111MODULE=on go mod download -json "$mod" | sed -n "s/^[[:space:]]*\"Dir\": \"\(.*\)\",*\$/\1/p")
    find "$dir/bin" "$dir/pkg/tool" -type f ! -perm -u+x -exec chmod a+x {} +
    PATH=$dir/bin:$PATH bash /src/scripts/provision.sh
    echo "built with: $(go version /usr/local/bin/underhood)"' || rc=$?
  local want
  want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
  if [ "$rc" = 0 ] && grep -q 'is go1.22.2, .*GOTOOLCHAIN=auto' "$d/provision-go122.log" &&
    grep -q '^provision: installed /usr/local/bin/underhood$' "$d/provision-go122.log" &&
    grep -q "^built with: .*go$want\$" "$d/provision-go122.log"; then
    pass provision-go1.22 "a Go 1.22 switched to go$want by itself (GOTOOLCHAIN=auto) and built underhood"
  else
    sed 's/^/    | /' "$d/provision-go122.log"
    fail provision-go1.22 "exit $rc (log: $d/provision-go122.log)"
  fi

  rc=0
  in_tree "$d/doctor.log" underhood --no-color doctor || rc=$?
  sed 's/^/    | /' "$d/doctor.log"
  if [ "$rc" = 0 ] && grep -q '^cgroup layout' "$d/doctor.log"; then
    pass doctor-in-tree "$(grep '^cgroup layout' "$d/doctor.log" | tr -s ' ' | cut -c1-90)"
  else
    fail doctor-in-tree "exit $rc (log: $d/doctor.log)"
  fi

  rc=0
  in_tree "$d/steps.log" underhood --no-color steps || rc=$?
  if [ "$rc" = 0 ] && grep -q '^7 ' "$d/steps.log"; then
    pass steps-in-tree "lists steps 1-7"
  else
    sed 's/^/    | /' "$d/steps.log"
    fail steps-in-tree "exit $rc (log: $d/steps.log)"
  fi
  rm -rf "$d/upper" "$d/root"
}

main() {
  mkdir -p "$CHECK_DIR"
  phase "installing what is missing"
  install_tools
  phase_end install
  phase "checking vagrant/Vagrantfile"
  check_vagrantfile
  phase_end vagrantfile
  phase "running shellcheck"
  check_shellcheck
  phase_end shellcheck
  phase "preparing the Debian $SUITE tree"
  base_tree
  phase_end debootstrap
  phase "running scripts/provision.sh in the tree"
  check_provision
  phase_end provision
  say "timings:"
  printf '  %s\n' "${timings[@]}"
  if [ "$failures" -gt 0 ]; then
    say "FAIL: $failures checks failed"
    exit 1
  fi
  say "PASS: every check"
}

main "$@"
