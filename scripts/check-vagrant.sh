#!/usr/bin/env bash
# check-vagrant: the checks of the Vagrant set-up that need no hypervisor.
#   1. vagrant validate -p on vagrant/Vagrantfile (ruby -c where Debian has
#      no vagrant package)
#   2. the Lima template (vagrant/lima.yaml) and the cloud-init file for
#      Multipass and cloud VMs (vagrant/cloud-init.yaml): parsed as YAML
#      (python3-yaml), their structure checked (Ubuntu 24.04 images whose
#      URLs are for the arch they name, the provision script they call
#      exists), and the scripts they carry written out for shellcheck and
#      for running in the tree
#   3. shellcheck on every shell script of the repository, and those
#   4. scripts/provision.sh in a Debian 12 minbase tree (debootstrap, cached
#      in $CHECK_DIR), run by chroot against this checkout: it must install
#      BusyBox and Go through apt and the Go module proxy, install underhood,
#      do nothing the second time, and handle PROVISION_CGROUP=v1 and v2;
#      the Lima and cloud-init scripts must provision through it; then
#      underhood doctor and underhood steps must run in the tree.
#   5. the same in an arm64 tree (debootstrap --foreign, run through
#      qemu-user's binfmt handler): first run, second run, an arm64
#      underhood, doctor and steps.
# Prints PASS or FAIL per check; exits 1 on any FAIL. Needs root (debootstrap,
# chroot, mounts), which CI is.
#
# Environment:
#   CHECK_DIR     where the cached tree and logs go (build/vagrant-check)
#   CHECK_MIRROR  the Debian mirror for debootstrap (http://deb.debian.org/debian)
#   CHECK_ARCHES  the trees to provision (amd64 arm64)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_DIR=${CHECK_DIR:-build/vagrant-check}
CHECK_MIRROR=${CHECK_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CHECK_ARCHES=${CHECK_ARCHES:-amd64 arm64}
TREE_ARCH=amd64 # the tree in_tree runs in

say() { printf 'vagrant-check: %s\n' "$*"; }
die() { printf 'vagrant-check: %s\n' "$*" >&2; exit 1; }

failures=0
pass() { printf '  PASS  %-22s %s\n' "$1" "${2:-}"; }
fail() { printf '  FAIL  %-22s %s\n' "$1" "${2:-}"; failures=$((failures + 1)); }

declare -a timings=()
t0=0
phase() { t0=$(date +%s%N); say "$*"; }
phase_end() {
  timings+=("$(awk -v a="$t0" -v b="$(date +%s%N)" -v n="$1" 'BEGIN { printf "%-18s %6.1f s", n, (b - a) / 1e9 }')")
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
  python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
  case " $CHECK_ARCHES " in
    *" arm64 "*) [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
      { command -v update-binfmts >/dev/null && [ -e /usr/share/binfmts/qemu-aarch64 ]; } ||
      need+=(qemu-user-static binfmt-support) ;;
  esac
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
  errs << "#{name}: PROVISION_VM is not vagrant" unless first && first.config.env["PROVISION_VM"] == "vagrant"
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

# --- 2. the Lima template and the cloud-init file -------------------------------

# Parses vagrant/lima.yaml and vagrant/cloud-init.yaml and checks what they
# must hold; writes the scripts they carry to $1 (lima-provision.sh with
# Lima's template variables filled in as Lima would, lima-probe.sh,
# underhood-provision) and prints one line per file.
VM_FILES_SHAPE='
import os, re, sys, yaml
out = sys.argv[1]
errs = []
def need(cond, msg):
    if not cond:
        errs.append(msg)

def images(path, doc):
    imgs = doc.get("images") or []
    archs = sorted(i.get("arch", "") for i in imgs)
    need(archs == ["aarch64", "x86_64"], f"{path}: images for {archs}, want aarch64 and x86_64")
    for i in imgs:
        url, arch = i.get("location", ""), i.get("arch", "")
        need(url.startswith("https://cloud-images.ubuntu.com/"), f"{path}: {url} is not an Ubuntu cloud image")
        need("ubuntu-24.04-" in url, f"{path}: {url} is not Ubuntu 24.04")
        want, other = {"aarch64": ("arm64", "amd64"), "x86_64": ("amd64", "arm64")}.get(arch, ("?", "?"))
        need(f"-{want}." in url and f"-{other}." not in url, f"{path}: {url} is not a {arch} ({want}) image")

# Lima
path = "vagrant/lima.yaml"
lima = yaml.safe_load(open(path))
need(isinstance(lima, dict), f"{path}: not a mapping")
known = {"minimumLimaVersion", "vmType", "arch", "images", "cpus", "memory", "disk", "mounts",
         "containerd", "param", "provision", "probes", "mountType", "ssh", "env", "rosetta"}
need(not set(lima) - known, f"{path}: keys Lima does not have here: {sorted(set(lima) - known)}")
minver = lima.get("minimumLimaVersion")
need(minver == "1.0.0", f"{path}: minimumLimaVersion {minver!r}, want 1.0.0 (param needs it)")
images(path, lima)
mounts = lima.get("mounts") or []
need(any(m.get("location") == "~" and m.get("mountPoint") == "/mnt/home" and m.get("writable") is False for m in mounts),
     f"{path}: the home folder is not mounted read-only at /mnt/home")
need(lima.get("containerd") == {"system": False, "user": False}, f"{path}: containerd is not off")
param = lima.get("param") or {}
prov = [p for p in lima.get("provision") or [] if p.get("mode") == "system"]
need(len(prov) == 1, f"{path}: {len(prov)} system provision scripts, want 1")
script = prov[0].get("script", "") if prov else ""
need(script.startswith("#!/bin/bash\n"), f"{path}: the provision script does not start with #!/bin/bash")
need("PROVISION_VM=lima" in script and "/scripts/provision.sh" in script, f"{path}: the provision script does not run scripts/provision.sh with PROVISION_VM=lima")
used = set(re.findall(r"{{\.Param\.(\w+)}}", script))
need(used and used <= set(param), f"{path}: the script uses params {sorted(used)}, the template defines {sorted(param)}")
filled = re.sub(r"{{\.Param\.(\w+)}}", lambda m: str(param.get(m.group(1), "")), script)
need("{{" not in filled, f"{path}: template variables left in the provision script")
open(os.path.join(out, "lima-provision.sh"), "w").write(filled)
probes = lima.get("probes") or []
need(len(probes) == 1 and probes[0].get("mode") == "readiness" and "/usr/local/bin/underhood" in probes[0].get("script", ""),
     f"{path}: no readiness probe waiting for /usr/local/bin/underhood")
if probes:
    open(os.path.join(out, "lima-probe.sh"), "w").write(probes[0].get("script", ""))
repo = param.get("REPO")
print(f"{path}: Ubuntu 24.04 for aarch64 and x86_64, provisions with scripts/provision.sh from /mnt/home/{repo}")

# cloud-init
path = "vagrant/cloud-init.yaml"
text = open(path).read()
need(text.startswith("#cloud-config\n"), f"{path}: the first line is not #cloud-config")
ci = yaml.safe_load(text)
need(isinstance(ci, dict), f"{path}: not a mapping")
known = {"package_update", "packages", "write_files", "runcmd"}
need(not set(ci) - known, f"{path}: keys not checked here: {sorted(set(ci) - known)}")
pk = set(ci.get("packages") or [])
need({"busybox-static", "golang-go", "ca-certificates"} <= pk, f"{path}: packages {sorted(pk)} lack busybox-static, golang-go or ca-certificates")
wf = [f for f in ci.get("write_files") or [] if f.get("path") == "/usr/local/sbin/underhood-provision"]
need(len(wf) == 1 and wf[0].get("permissions") == "0755", f"{path}: no /usr/local/sbin/underhood-provision with permissions 0755")
content = wf[0].get("content", "") if wf else ""
need(content.startswith("#!/bin/bash\n") and "/scripts/provision.sh" in content and "PROVISION_VM" in content,
     f"{path}: underhood-provision does not run scripts/provision.sh with PROVISION_VM")
open(os.path.join(out, "underhood-provision"), "w").write(content)
run = " ".join(str(x) for c in ci.get("runcmd") or [] for x in (c if isinstance(c, list) else [c]))
need("/usr/local/sbin/underhood-provision" in run, f"{path}: runcmd does not call underhood-provision")
print(f"{path}: installs {sorted(pk)}, writes underhood-provision, which runs scripts/provision.sh")

need(os.access("scripts/provision.sh", os.X_OK), "scripts/provision.sh is missing or not executable")
if errs:
    sys.exit("; ".join(errs))
'

check_vm_files() {
  local out
  mkdir -p "$CHECK_DIR/vm-files"
  if out=$(python3 -c "$VM_FILES_SHAPE" "$CHECK_DIR/vm-files" 2>&1); then
    pass lima-template "$(sed -n 1p <<<"$out")"
    pass cloud-init "$(sed -n 2p <<<"$out")"
  else
    fail vm-files "$out"
    return
  fi
  if command -v cloud-init >/dev/null; then
    if out=$(cloud-init schema -c vagrant/cloud-init.yaml 2>&1); then
      pass cloud-init-schema "$out"
    else
      fail cloud-init-schema "$out"
    fi
  fi
}

# --- 3. shellcheck -------------------------------------------------------------

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
  local scripts out f
  mapfile -t scripts < <(shell_scripts)
  # The scripts the Lima template and the cloud-init file carry.
  for f in lima-provision.sh lima-probe.sh underhood-provision; do
    [ -f "$CHECK_DIR/vm-files/$f" ] && scripts+=("$CHECK_DIR/vm-files/$f")
  done
  if out=$(shellcheck "${scripts[@]}" 2>&1); then
    pass shellcheck "${#scripts[@]} scripts: ${scripts[*]}"
  else
    fail shellcheck "$out"
  fi
}

# --- 4. provision.sh in Debian 12 trees -----------------------------------------

# binfmt_ready makes sure the kernel runs arm64 binaries through
# qemu-user: installing qemu-user-static registers its handler only where
# binfmt_misc is mounted (systemd mounts it at boot; a machine without it
# never has it). What this function mounts or enables is recorded and undone
# on exit by binfmt_undo; a handler that was already there is left alone.
BINFMT=/proc/sys/fs/binfmt_misc
binfmt_mounted="" binfmt_enabled=""
binfmt_ready() {
  [ -e "$BINFMT/qemu-aarch64" ] && return
  { command -v update-binfmts >/dev/null && [ -e /usr/share/binfmts/qemu-aarch64 ]; } ||
    die "no binfmt handler for arm64 binaries ($BINFMT/qemu-aarch64): apt-get install qemu-user-static binfmt-support"
  if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" ||
      die "mount -t binfmt_misc binfmt_misc $BINFMT failed: arm64 binaries cannot run here"
    binfmt_mounted=1
  fi
  # --import reads /usr/share/binfmts/qemu-aarch64 where the package's
  # postinst could not; --enable then writes it to $BINFMT/register.
  [ -e /var/lib/binfmts/qemu-aarch64 ] || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  [ -e "$BINFMT/qemu-aarch64" ] ||
    die "update-binfmts --enable qemu-aarch64 registered nothing in $BINFMT: arm64 binaries cannot run here"
  binfmt_enabled=1
  say "registered qemu-user's arm64 handler in $BINFMT for this check (removed at the end)"
}
binfmt_undo() {
  if [ -n "$binfmt_enabled" ] && [ -e "$BINFMT/qemu-aarch64" ]; then
    echo -1 >"$BINFMT/qemu-aarch64" || say "could not remove $BINFMT/qemu-aarch64"
  fi
  if [ -n "$binfmt_mounted" ]; then
    umount "$BINFMT" || say "could not unmount $BINFMT"
  fi
}

# The pristine tree of $TREE_ARCH: debootstrap --variant=minbase, plus CA
# certificates. BusyBox and Go are left out on purpose: provision.sh must
# install them. A foreign arch is debootstrapped in two stages, the second
# one chrooted, run through qemu-user's binfmt handler.
base_tree() {
  local base=$CHECK_DIR/$SUITE-$TREE_ARCH-minbase log=$CHECK_DIR/debootstrap-$TREE_ARCH.log
  if [ -e "$base/.underhood-complete" ]; then
    say "tree: cached $base"
    return
  fi
  rm -rf "$base"
  mkdir -p "$CHECK_DIR"
  if [ "$TREE_ARCH" = "$(dpkg --print-architecture)" ]; then
    say "tree: debootstrap --variant=minbase $SUITE (about half a minute)"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$base" "$CHECK_MIRROR" \
      >"$log" 2>&1 || { tail -20 "$log"; die "debootstrap failed"; }
  else
    binfmt_ready
    say "tree: debootstrap --arch=$TREE_ARCH --foreign --variant=minbase $SUITE, second stage under qemu-user (a few minutes)"
    # shellcheck disable=SC2016
    { debootstrap --arch="$TREE_ARCH" --foreign --variant=minbase --include=ca-certificates "$SUITE" "$base" "$CHECK_MIRROR" &&
      unshare --mount --propagation private sh -c 'mount -t proc proc "$1/proc" && chroot "$1" /debootstrap/debootstrap --second-stage' sh "$base"; } \
      >"$log" 2>&1 || { tail -20 "$log"; die "debootstrap of $TREE_ARCH failed"; }
  fi
  touch "$base/.underhood-complete"
}

# in_tree LOG CMD...: runs CMD chrooted in a throw-away overlay of the tree,
# in a mount namespace of its own (proc, sys, dev and this checkout, read
# only, at /src), so nothing is left mounted and the cached tree stays as
# it was. The overlay's upper layer is $CHECK_DIR/upper-$TREE_ARCH, kept
# between calls of one run so the second provision sees the first one's work.
in_tree() {
  local log=$1
  shift
  # The inner script gets its values as arguments: single quotes on purpose.
  # shellcheck disable=SC2016
  unshare --mount --propagation private bash -euo pipefail -c '
    base=$1 upper=$2 src=$3 modcache=$4
    shift 4
    root=$upper/root
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
  ' in_tree "$PWD/$CHECK_DIR/$SUITE-$TREE_ARCH-minbase" "$PWD/$CHECK_DIR/upper-$TREE_ARCH" "$PWD" "$PWD/$CHECK_DIR/_gomodcache" "$@" \
    >"$log" 2>&1
}

# elf_machine FILE: the ELF e_machine of FILE (x86_64, aarch64 or a number).
elf_machine() {
  local m
  m=$(od -An -t u2 -j 18 -N 2 "$1" | tr -d ' ')
  case $m in 62) echo x86_64 ;; 183) echo aarch64 ;; *) echo "machine $m" ;; esac
}

# check_provision: provision.sh in the $TREE_ARCH tree. Every arch: a first
# run through apt and the Go module proxy, a second run with neither, an
# underhood for the arch, doctor and steps. The native tree also: the cgroup
# switch, a Go 1.22 that switches toolchains itself, and the scripts of the
# Lima template and the cloud-init file.
check_provision() {
  local d=$CHECK_DIR rc a=$TREE_ARCH want_machine
  local u=$d/upper-$a l=$d/$a
  want_machine=$(case $a in amd64) echo x86_64 ;; arm64) echo aarch64 ;; *) echo "$a" ;; esac)
  rm -rf "$u"
  # Go's module cache is read-only on purpose; the toolchain it holds is
  # kept between runs of this check (delete $d/_gomodcache to fetch it
  # again); the _ keeps the Go sources it holds out of go test ./... here.

  rc=0
  in_tree "$l-provision-1.log" env PROVISION_SRC=/src bash /src/scripts/provision.sh || rc=$?
  sed 's/^/    | /' "$l-provision-1.log"
  if [ "$rc" != 0 ]; then
    fail "$a provision-first" "exit $rc (log: $l-provision-1.log)"
  elif ! grep -q 'installing .*busybox-static' "$l-provision-1.log"; then
    fail "$a provision-first" "did not install busybox-static through apt"
  elif ! grep -q '^provision: installed /usr/local/bin/underhood$' "$l-provision-1.log"; then
    fail "$a provision-first" "no 'installed /usr/local/bin/underhood'"
  elif ! grep -q 'sudo underhood doctor' "$l-provision-1.log"; then
    fail "$a provision-first" "it does not say what to run first"
  else
    pass "$a provision-first" "$(grep -m1 '^provision: Go:' "$l-provision-1.log" | sed 's/^provision: //')"
  fi

  local bin=$u/data/usr/local/bin/underhood
  if [ -x "$bin" ] && [ "$(elf_machine "$bin")" = "$want_machine" ]; then
    pass "$a underhood-installed" "/usr/local/bin/underhood, $(du -h "$bin" | cut -f1), for $want_machine"
  elif [ -x "$bin" ]; then
    fail "$a underhood-installed" "/usr/local/bin/underhood is for $(elf_machine "$bin"), want $want_machine"
  else
    fail "$a underhood-installed" "no /usr/local/bin/underhood in the tree"
  fi

  rc=0
  # The second run may use neither apt nor the network: GOPROXY=off.
  in_tree "$l-provision-2.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 GOPROXY=off bash /src/scripts/provision.sh || rc=$?
  if [ "$rc" != 0 ]; then
    sed 's/^/    | /' "$l-provision-2.log"
    fail "$a provision-again" "exit $rc (log: $l-provision-2.log)"
  elif grep -q 'installing' "$l-provision-2.log"; then
    fail "$a provision-again" "installed again: $(grep 'installing' "$l-provision-2.log")"
  else
    pass "$a provision-again" "idempotent: no apt (PROVISION_NO_APT=1), no network (GOPROXY=off), rebuilt"
  fi

  if [ "$a" = "$(dpkg --print-architecture)" ]; then
    check_provision_native "$l"
  fi

  rc=0
  in_tree "$l-doctor.log" underhood --no-color doctor || rc=$?
  sed 's/^/    | /' "$l-doctor.log"
  if [ "$rc" = 0 ] && grep -q '^cgroup layout' "$l-doctor.log" &&
    grep -q "^architecture .* $want_machine (underhood built for $a)" "$l-doctor.log"; then
    pass "$a doctor-in-tree" "$(grep '^architecture' "$l-doctor.log" | tr -s ' ' | cut -c1-90)"
  else
    fail "$a doctor-in-tree" "exit $rc, or no $want_machine architecture row (log: $l-doctor.log)"
  fi

  rc=0
  in_tree "$l-steps.log" underhood --no-color steps || rc=$?
  if [ "$rc" = 0 ] && grep -q '^7 ' "$l-steps.log"; then
    pass "$a steps-in-tree" "lists the steps, 1-$(grep -cE '^[0-9]+ ' "$l-steps.log")"
  else
    sed 's/^/    | /' "$l-steps.log"
    fail "$a steps-in-tree" "exit $rc (log: $l-steps.log)"
  fi
  rm -rf "$u"
}

# What only the native tree runs (L: the logs' prefix).
check_provision_native() {
  local l=$1 rc
  rc=0
  in_tree "$l-provision-v1.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 GOPROXY=off PROVISION_CGROUP=v1 \
    sh -c 'bash /src/scripts/provision.sh && cat /etc/default/grub.d/99-underhood-cgroup-v1.cfg' || rc=$?
  if [ "$rc" = 0 ] && grep -q 'systemd.unified_cgroup_hierarchy=0' "$l-provision-v1.log" &&
    grep -q 'no update-grub here' "$l-provision-v1.log"; then
    rc=0
    in_tree "$l-provision-v2.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 GOPROXY=off PROVISION_CGROUP=v2 \
      sh -c 'bash /src/scripts/provision.sh && ! test -e /etc/default/grub.d/99-underhood-cgroup-v1.cfg' || rc=$?
    if [ "$rc" = 0 ]; then
      pass provision-cgroup "v1 writes the GRUB drop-in (no grub in the tree: says so), v2 removes it"
    else
      fail provision-cgroup "PROVISION_CGROUP=v2: exit $rc: $(tail -3 "$l-provision-v2.log")"
    fi
  else
    fail provision-cgroup "PROVISION_CGROUP=v1: exit $rc: $(tail -3 "$l-provision-v1.log")"
  fi

  # Ubuntu 24.04, the Vagrant box, has golang-go 1.22.2: a Go that switches
  # toolchains itself. The same Go, fetched as a toolchain module, stands in.
  rc=0
  # shellcheck disable=SC2016
  in_tree "$l-provision-go122.log" env PROVISION_SRC=/src PROVISION_NO_APT=1 sh -c '
    mod=golang.org/toolchain@v0.0.1-go1.22.2.linux-amd64
    dir=$(cd / && GO111MODULE=on go mod download -json "$mod" | sed -n "s/^[[:space:]]*\"Dir\": \"\(.*\)\",*\$/\1/p")
    find "$dir/bin" "$dir/pkg/tool" -type f ! -perm -u+x -exec chmod a+x {} +
    PATH=$dir/bin:$PATH bash /src/scripts/provision.sh
    echo "built with: $(go version /usr/local/bin/underhood)"' || rc=$?
  local want
  want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
  if [ "$rc" = 0 ] && grep -q 'is go1.22.2, .*GOTOOLCHAIN=auto' "$l-provision-go122.log" &&
    grep -q '^provision: installed /usr/local/bin/underhood$' "$l-provision-go122.log" &&
    grep -q "^built with: .*go$want\$" "$l-provision-go122.log"; then
    pass provision-go1.22 "a Go 1.22 switched to go$want by itself (GOTOOLCHAIN=auto) and built underhood"
  else
    sed 's/^/    | /' "$l-provision-go122.log"
    fail provision-go1.22 "exit $rc (log: $l-provision-go122.log)"
  fi

  # The Lima template's provision script, as Lima fills it in, with the
  # checkout where the template mounts it (/mnt/home/underhood); then
  # doctor must name the way.
  local files=/src/$CHECK_DIR/vm-files
  rc=0
  # shellcheck disable=SC2016
  in_tree "$l-lima.log" env PROVISION_NO_APT=1 GOPROXY=off sh -c '
    mkdir -p /mnt/home && ln -sfn /src /mnt/home/underhood
    bash "$1/lima-provision.sh" && cat /etc/underhood/provisioned &&
    underhood --no-color doctor | grep "^environment"' sh "$files" || rc=$?
  if [ "$rc" = 0 ] && grep -q '^way=lima$' "$l-lima.log" && grep -q 'provisioned for the workshop (lima' "$l-lima.log"; then
    pass lima-provision "the template's script ran provision.sh (way=lima); doctor says so"
  else
    sed 's/^/    | /' "$l-lima.log"
    fail lima-provision "exit $rc (log: $l-lima.log)"
  fi

  # cloud-init's underhood-provision: without a checkout it says what to do
  # (exit 2); with one it provisions (way=multipass).
  rc=0
  # shellcheck disable=SC2016
  in_tree "$l-cloud-init.log" env PROVISION_NO_APT=1 GOPROXY=off sh -c '
    if bash "$1/underhood-provision" /nonexistent; then exit 1; else echo "without a checkout: exit $?"; fi
    bash "$1/underhood-provision" /src && cat /etc/underhood/provisioned &&
    underhood --no-color doctor | grep "^environment"' sh "$files" || rc=$?
  if [ "$rc" = 0 ] && grep -q 'without a checkout: exit 2' "$l-cloud-init.log" && grep -q 'no underhood checkout at /nonexistent' "$l-cloud-init.log" &&
    grep -q '^way=multipass$' "$l-cloud-init.log" && grep -q 'provisioned for the workshop (multipass' "$l-cloud-init.log"; then
    pass cloud-init-provision "underhood-provision: exit 2 without a checkout, provisions with one (way=multipass)"
  else
    sed 's/^/    | /' "$l-cloud-init.log"
    fail cloud-init-provision "exit $rc (log: $l-cloud-init.log)"
  fi
}

main() {
  trap binfmt_undo EXIT
  mkdir -p "$CHECK_DIR"
  # A module of its own, so that go build/test/vet ./... of the checkout
  # skip the trees below it (they hold Debian's Go sources and a module
  # cache, which broke 'go vet ./...' after a vagrant-check).
  [ -e "$CHECK_DIR/go.mod" ] || printf 'module vagrantcheck.invalid\n' >"$CHECK_DIR/go.mod"
  phase "installing what is missing"
  install_tools
  phase_end install
  phase "checking vagrant/Vagrantfile"
  check_vagrantfile
  phase_end vagrantfile
  phase "checking vagrant/lima.yaml and vagrant/cloud-init.yaml"
  check_vm_files
  phase_end vm-files
  phase "running shellcheck"
  check_shellcheck
  phase_end shellcheck
  local a
  for a in $CHECK_ARCHES; do
    TREE_ARCH=$a
    phase "preparing the Debian $SUITE $a tree"
    base_tree
    phase_end "debootstrap $a"
    phase "running scripts/provision.sh in the $a tree"
    check_provision
    phase_end "provision $a"
  done
  say "timings:"
  printf '  %s\n' "${timings[@]}"
  if [ "$failures" -gt 0 ]; then
    say "FAIL: $failures checks failed"
    exit 1
  fi
  say "PASS: every check"
}

main "$@"
