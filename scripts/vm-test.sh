#!/usr/bin/env bash
# vm-test: boots Debian's kernel under qemu with software emulation (TCG),
# once per cgroup layout (pure v2 and pure v1), with an initramfs holding a
# static BusyBox, /init (scripts/vm/init), a static underhood and the test
# binaries of $VM_TEST_PKGS; /init runs the workshop's steps and those tests
# as root and reports on the serial console. Prints PASS or FAIL per check
# and exits 1 on any FAIL, a missing report or a boot that timed out.
#
# Nothing is installed on the host but qemu-system-x86 and cpio (and
# busybox-static): the kernel is unpacked from its .deb into $VM_DIR, with
# the few modules the lab needs that Debian builds as modules (veth, and
# what it depends on), decompressed there; /init loads them with insmod.
#
# VM_ARCH=arm64 (make vm-test-arm64) boots Debian's arm64 kernel under
# qemu-system-aarch64 (TCG, machine virt) instead, with an arm64 BusyBox
# from Debian's busybox-static and underhood and its tests built with
# GOARCH=arm64. Both .debs come through apt-get with a private state in
# $VM_DIR/apt (the host's sources, arch arm64): the host's own package
# state is left alone. It runs cgroup v2 only, the /init checks and the
# tests of ./lab/cgroup and ./lab/doctor. The tests of ./cmd/underhood take
# 66 s natively and many times that under emulation, and one of them calls
# the host's lsns and ps, amd64 programs: VM_TEST_PKGS="./cmd/underhood
# ./lab/cgroup ./lab/doctor" adds them, without that one.
#
# The test binaries need cmd/underhood's UNDERHOOD_TEST_BINARY hook: in the
# VM there is no Go to build underhood with, so /init points the tests at
# /bin/underhood.
#
# Environment:
#   VM_ARCH       amd64 or arm64 (amd64)
#   VM_DIR        where the kernel, images and console logs go (build/vm,
#                 build/vm-arm64)
#   VM_DRY_RUN    1: fetch and build everything, boot nothing
#   VM_LAYOUTS    the boots: v2, v1, hybrid ("v2 v1")
#   VM_JOBS       boots at once, one host core each (2 where there are 2 cores)
#   VM_TIMEOUT    seconds one boot may take, start to poweroff (600; arm64
#                 900): it catches a hang, not a busy host, where TCG slows
#   VM_ACCEL      qemu accelerator: tcg, or kvm where /dev/kvm works (tcg);
#                 kvm uses -cpu host, tcg -cpu max
#   VM_TEST_PKGS  packages whose tests run in the VM, from their own folder
#                 with their testdata ("./cmd/underhood ./lab/cgroup ./lab/doctor
#                 ./lab/netns"; arm64: "./lab/cgroup ./lab/doctor")
#   VM_TEST_SKIP  -test.skip for them ('^TestDocsOutputs$': it runs the
#                 guide's shell commands, with sudo and bash, which the VM has not)
#   VM_TEST_MUST  the tests (a -test.list pattern) that must pass, not skip,
#                 in the VM, which has root, veth and user namespaces: those
#                 of the network and user namespace steps
#                 ('^Test.*(Net|Veth|UserN|Rootless)')
#   VM_HOST_TOOLS host programs the tests call, copied in with their
#                 libraries ("lsns ps ip nsenter unshare": util-linux, procps, iproute2; not BusyBox's)
#   VM_VERBOSE    1: copy the serial console to the terminal as it comes
#   GO            the go command (go)
set -euo pipefail
cd "$(dirname "$0")/.."

VM_ARCH=${VM_ARCH:-amd64}
case $VM_ARCH in
  amd64)
    VM_DIR=${VM_DIR:-build/vm}
    VM_LAYOUTS=${VM_LAYOUTS:-v2 v1}
    VM_TIMEOUT=${VM_TIMEOUT:-600}
    VM_TEST_PKGS=${VM_TEST_PKGS:-./cmd/underhood ./lab/cgroup ./lab/doctor ./lab/netns}
    VM_HOST_TOOLS=${VM_HOST_TOOLS-lsns ps ip nsenter unshare}
    QEMU=qemu-system-x86_64 QEMU_PKG=qemu-system-x86 CONSOLE=ttyS0
    ;;
  arm64)
    VM_DIR=${VM_DIR:-build/vm-arm64}
    VM_LAYOUTS=${VM_LAYOUTS:-v2}
    VM_TIMEOUT=${VM_TIMEOUT:-900}
    VM_TEST_PKGS=${VM_TEST_PKGS:-./lab/cgroup ./lab/doctor}
    VM_HOST_TOOLS=${VM_HOST_TOOLS-}
    # With VM_TEST_PKGS=./cmd/underhood: TestInspectLabContainer compares
    # with util-linux's lsns and procps' ps, which the arm64 VM has not.
    VM_TEST_SKIP=${VM_TEST_SKIP-^(TestDocsOutputs|TestInspectLabContainer)\$}
    QEMU=qemu-system-aarch64 QEMU_PKG=qemu-system-arm CONSOLE=ttyAMA0
    ;;
  *) echo "vm-test: VM_ARCH=$VM_ARCH: want amd64 or arm64" >&2; exit 2 ;;
esac
VM_JOBS=${VM_JOBS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
VM_TEST_SKIP=${VM_TEST_SKIP-^TestDocsOutputs\$}
VM_TEST_MUST=${VM_TEST_MUST-^Test.*(Net|Veth|UserN|Rootless|Layers)}
VM_DRY_RUN=${VM_DRY_RUN:-0}
VM_ACCEL=${VM_ACCEL:-tcg}
VM_VERBOSE=${VM_VERBOSE:-0}
GO=${GO:-go}
# The BusyBox that goes into the VM, and one that runs here to list its
# applets (the same Debian package, for the host's arch).
if [ "$VM_ARCH" = amd64 ]; then
  BUSYBOX=${BUSYBOX:-/bin/busybox}
else
  BUSYBOX=${BUSYBOX:-$VM_DIR/busybox/busybox}
fi
BUSYBOX_LIST=${BUSYBOX_LIST:-/bin/busybox}

# test_name PKG: the check that reports PKG's tests, e.g. tests:cmd/underhood.
test_name() { local p=${1#./}; echo "tests:${p%/}"; }

# The checks /init must report for each layout, in its order.
CHECKS="layout modules doctor steps download rootfs step3-chroot step4-mount-proc
  step5-unshare step6-cgroup-oom step6-oom-counter step7-run step7-run-hog
  step11-network step12-userns cleanup-killed-run cleanup-all nothing-left"
for pkg in $VM_TEST_PKGS; do CHECKS="$CHECKS $(test_name "$pkg")"; done
CHECKS="$CHECKS nothing-left-after-tests"

# The kernel must have these built in: /init needs them before it could
# load a module, and namespaces and cgroups cannot be modules.
KCONFIG="BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS PROC_FS
  CGROUPS MEMCG CGROUP_PIDS PID_NS UTS_NS NET_NS USER_NS"
case $VM_ARCH in
  amd64) KCONFIG="$KCONFIG SERIAL_8250_CONSOLE" ;;
  arm64) KCONFIG="$KCONFIG SERIAL_AMBA_PL011_CONSOLE" ;;
esac
# These may be built in (=y) or modules (=m), as CONFIG_SYMBOL:module: the
# modules, and those they depend on, go into the initramfs and /init loads
# them before its checks. Debian has CONFIG_VETH=m and CONFIG_OVERLAY_FS=m
# (step 13, layers).
KMODULES="VETH:veth OVERLAY_FS:overlay"

say() { printf 'vm-test: %s\n' "$*"; }
die() { printf 'vm-test: %s\n' "$*" >&2; exit 1; }

declare -a timings=()
phase_start=0
phase() { phase_start=$(date +%s%N); say "$*"; }
phase_end() {
  timings+=("$(awk -v a="$phase_start" -v b="$(date +%s%N)" -v n="$1" 'BEGIN { printf "%-12s %6.1f s", n, (b - a) / 1e9 }')")
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- host tools --------------------------------------------------------------

install_tools() {
  local need=()
  command -v "$QEMU" >/dev/null || need+=("$QEMU_PKG")
  command -v cpio >/dev/null || need+=(cpio)
  [ -x "$BUSYBOX_LIST" ] || need+=(busybox-static)
  if [ "${#need[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${need[*]}: install them (Debian package names), then run this again"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
      { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  fi
  command -v "$GO" >/dev/null || die "no Go ($GO): install Go, or set GO=/path/to/go"
  command -v timeout >/dev/null || die "no timeout (coreutils)"
  [ "$VM_ARCH" != amd64 ] || file_is_static "$BUSYBOX" || die "$BUSYBOX is not a static binary: apt-get install busybox-static"
}

# file_is_static PATH: an ELF without a program interpreter (readelf, from
# binutils, decides where it is installed).
file_is_static() {
  [ -x "$1" ] || return 1
  command -v readelf >/dev/null || return 0
  ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

# --- the kernel: unpacked from Debian's .deb, never installed ----------------

# apt_download DIR PKG...: the .debs of PKG for $VM_ARCH into DIR. amd64 on
# an amd64 host uses the host's apt; another arch uses apt-get with a
# private state in $VM_DIR/apt (the host's sources, APT::Architecture set),
# refreshed by its own apt-get update the first time.
apt_download() {
  local dir=$1
  shift
  # apt-get download runs its sandbox as _apt, which cannot write here.
  local apt=(apt-get -q -o APT::Sandbox::User=root)
  if [ "$VM_ARCH" != "$(dpkg --print-architecture)" ]; then
    local st=$PWD/$VM_DIR/apt
    mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
    touch "$st/status"
    apt+=(-o "APT::Architecture=$VM_ARCH" -o "APT::Architectures::=$VM_ARCH"
      -o "Dir::State=$st" -o "Dir::State::Lists=$st/lists" -o "Dir::State::status=$st/status"
      -o "Dir::Cache=$st/cache" -o Debug::NoLocking=1)
    if [ -z "$(find "$st/lists" -maxdepth 1 -name '*Packages*' 2>/dev/null | head -1)" ]; then
      say "apt: reading the $VM_ARCH package lists (a private apt state in $st)"
      "${apt[@]}" update -qq
    fi
  fi
  if ! (cd "$dir" && "${apt[@]}" download "$@" >/dev/null 2>&1); then
    say "apt-get download failed: refreshing the package lists"
    if [ "$VM_ARCH" = "$(dpkg --print-architecture)" ]; then as_root apt-get update -qq; else "${apt[@]}" update -qq; fi
    (cd "$dir" && "${apt[@]}" download "$@" >/dev/null)
  fi
}

# fetch_kernel: vmlinuz, config and the modules of $KMODULES in $VM_DIR/kernel.
fetch_kernel() {
  local kdir=$VM_DIR/kernel a=$VM_ARCH
  # modules/load is there, empty or not, once the modules were looked at.
  if [ -s "$kdir/vmlinuz" ] && [ -s "$kdir/config" ] && [ -e "$kdir/modules/load" ]; then
    say "kernel: cached $(cat "$kdir/VERSION")$(modules_said "$kdir/modules")"
    return
  fi
  [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] ||
    die "the VM runs Debian's kernels fetched with apt: run vm-test on an x86_64 Debian or Ubuntu host"
  local tmp
  mkdir -p "$VM_DIR"
  tmp=$(mktemp -d "$PWD/$VM_DIR/kernel-dl.XXXXXX")
  apt_download "$tmp" "linux-image-$a"
  local meta dep
  meta=$(ls "$tmp"/linux-image-"$a"_*.deb)
  dep=$(dpkg-deb -f "$meta" Depends | grep -o "linux-image-[0-9][^ ,]*-$a" | head -1)
  [ -n "$dep" ] || die "cannot tell which kernel linux-image-$a depends on: $(dpkg-deb -f "$meta" Depends)"
  apt_download "$tmp" "$dep"
  # Unpacked once (about 400 MB) for the few files taken from it.
  dpkg-deb --fsys-tarfile "$tmp/${dep}"_*.deb >"$tmp/data.tar"
  tar -x -C "$tmp" -f "$tmp/data.tar" --wildcards './boot/vmlinuz-*' './boot/config-*'
  rm -rf "$kdir"
  mkdir -p "$kdir/modules"
  ship_modules "$tmp/data.tar" "$tmp"/boot/config-* "${dep#linux-image-}" "$kdir/modules"
  # Debian's arm64 vmlinuz is a gzipped Image: unpacked, any qemu boots it.
  if gzip -t "$tmp"/boot/vmlinuz-* 2>/dev/null; then
    gzip -dc "$tmp"/boot/vmlinuz-* >"$kdir/vmlinuz"
  else
    mv "$tmp"/boot/vmlinuz-* "$kdir/vmlinuz"
  fi
  mv "$tmp"/boot/config-* "$kdir/config"
  echo "$dep $(dpkg-deb -f "$tmp/${dep}"_*.deb Version)" >"$kdir/VERSION"
  rm -rf "$tmp"
  say "kernel: $(cat "$kdir/VERSION")$(modules_said "$kdir/modules")"
}

# ship_modules TAR CONFIG KVER OUT: for each CONFIG_X=m of $KMODULES, its
# module and every module it depends on, decompressed into OUT, and OUT/load
# naming them in the order insmod must load them, dependencies first, as
# "name file why" lines. A module that is built in needs nothing; one the
# kernel lacks is an error. The .deb has no modules.dep (depmod makes it on
# install): the dependencies are the depends= of each module's .modinfo.
ship_modules() {
  local tar=$1 config=$2 kver=$3 out=$4 m sym
  tar -t -f "$tar" | grep -E '\.ko(\.xz|\.zst|\.gz)?$' >"$out/.files" || true
  : >"$out/load"
  for m in $KMODULES; do
    sym=${m%%:*}
    case $(grep -E "^(# )?CONFIG_${sym}[= ]" "$config" || true) in
      "CONFIG_$sym=y") ;;
      "CONFIG_$sym=m") ship_module "$tar" "$kver" "$out" "${m#*:}" "CONFIG_$sym=m" ;;
      *) die "the kernel has no CONFIG_$sym, built in or as a module ($kver): the lab needs it" ;;
    esac
  done
  rm -f "$out/.files"
}

# ship_module TAR KVER OUT NAME WHY: NAME's dependencies, then NAME.
ship_module() {
  local tar=$1 kver=$2 out=$3 name=$4 why=$5 path ko magic d
  # Names in depends= and on files mix - and _: either matches either.
  grep -q "^${name//[-_]/_} " "$out/load" && return
  path=$(grep -E "/${name//[-_]/[-_]}\.ko(\.xz|\.zst|\.gz)?\$" "$out/.files" | head -1) ||
    die "no $name.ko in the .deb of $kver"
  ko=$out/${name//[-_]/_}.ko
  case $path in
    *.ko) tar -x -O -f "$tar" "$path" >"$ko" ;;
    *.ko.xz) need_tool xz xz-utils "$path" && tar -x -O -f "$tar" "$path" | xz -dc >"$ko" ;;
    *.ko.zst) need_tool zstd zstd "$path" && tar -x -O -f "$tar" "$path" | zstd -dcq >"$ko" ;;
    *.ko.gz) tar -x -O -f "$tar" "$path" | gzip -dc >"$ko" ;;
  esac
  [ -s "$ko" ] || die "unpack $path from the .deb of $kver into $ko: empty"
  magic=$(ko_info "$ko" vermagic)
  [ "${magic%% *}" = "$kver" ] || die "$path: vermagic \"$magic\", want the kernel's $kver"
  for d in $(ko_info "$ko" depends | tr , ' '); do
    ship_module "$tar" "$kver" "$out" "$d" "needed-by-$name"
  done
  echo "${name//[-_]/_} ${ko##*/} $why" >>"$out/load"
}

# ko_info KO FIELD: a field of a module's .modinfo (NUL-separated
# field=value strings), as modinfo -F prints it; BusyBox's modinfo wants a
# modules.dep, and kmod's may not be installed.
ko_info() {
  tr '\0' '\n' <"$1" | awk -v f="$2=" 'index($0, f) == 1 && !n++ { print substr($0, length(f) + 1) }'
}

need_tool() {
  command -v "$1" >/dev/null || die "decompress $3: no $1 on this machine (apt-get install $2)"
}

# modules_said DIR: ", with veth.ko (CONFIG_VETH=m)" or nothing.
modules_said() {
  [ -s "$1/load" ] || return 0
  printf ', with %s' "$(awk '{ printf "%s%s (%s)", n++ ? ", " : "", $2, $3 }' "$1/load")"
}

# fetch_busybox: for another arch than the host's, /bin/busybox of that
# arch's busybox-static, unpacked from its .deb.
fetch_busybox() {
  [ "$VM_ARCH" != amd64 ] || return 0
  if [ -s "$BUSYBOX" ]; then
    say "busybox: cached $BUSYBOX"
    return
  fi
  local tmp
  tmp=$(mktemp -d "$PWD/$VM_DIR/busybox-dl.XXXXXX")
  apt_download "$tmp" busybox-static
  dpkg-deb --fsys-tarfile "$tmp"/busybox-static_*.deb | tar -x -C "$tmp" ./bin/busybox
  mkdir -p "$(dirname "$BUSYBOX")"
  mv "$tmp/bin/busybox" "$BUSYBOX"
  say "busybox: $(dpkg-deb -f "$tmp"/busybox-static_*.deb Version) for $VM_ARCH at $BUSYBOX"
  rm -rf "$tmp"
}

# elf_machine FILE: the machine an ELF file is built for.
elf_machine() {
  case $(od -An -t u2 -j 18 -N 2 "$1" | tr -d ' ') in
    62) echo amd64 ;; 183) echo arm64 ;; *) echo unknown ;;
  esac
}

check_kernel_config() {
  local c missing=()
  for c in $KCONFIG; do
    grep -qx "CONFIG_$c=y" "$VM_DIR/kernel/config" || missing+=("CONFIG_$c")
  done
  [ "${#missing[@]}" -eq 0 ] ||
    die "the kernel lacks built-in ${missing[*]} ($(cat "$VM_DIR/kernel/VERSION")): the initramfs carries only the modules of KMODULES"
}

# --- the initramfs -----------------------------------------------------------

# newc_entry NAME MODE RDEVMAJOR RDEVMINOR: one cpio newc header for an empty
# file, directory or device, so no mknod (and no root) is needed.
newc_entry() {
  local name=$1 mode=$2 major=$3 minor=$4 namesize
  namesize=$(( ${#name} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    0 "$mode" 0 0 1 0 0 0 0 "$major" "$minor" "$namesize" 0
  printf '%s\0' "$name"
  # The header (110 bytes) and the name are padded to a multiple of 4.
  local pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}

# The kernel opens /dev/console for /init before anything is mounted.
dev_archive() {
  newc_entry dev $((0040755)) 0 0
  newc_entry dev/console $((0020600)) 5 1
  newc_entry 'TRAILER!!!' 0 0 0
}

# The base image: BusyBox with its applet links, /init, the mount points.
# Rebuilt only when BusyBox or scripts/vm/init change.
build_base() {
  local stamp want
  [ "$(elf_machine "$BUSYBOX")" = "$VM_ARCH" ] || die "$BUSYBOX is not built for $VM_ARCH"
  want=$(cat "$BUSYBOX" scripts/vm/init | sha256sum | cut -d' ' -f1)
  stamp=$VM_DIR/base.stamp
  if [ -s "$VM_DIR/base.cpio.gz" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "base image: cached"
    return
  fi
  local root=$VM_DIR/base
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,tmp,root,etc,var/lib/underhood}
  cp "$BUSYBOX" "$root/bin/busybox"
  local a
  while read -r a; do
    case $a in bin/busybox | linuxrc | "") continue ;; esac
    ln -sf /bin/busybox "$root/$a"
  done < <("$BUSYBOX_LIST" --list-full)
  install -m 0755 scripts/vm/init "$root/init"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  {
    dev_archive
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
  } | gzip -6 >"$VM_DIR/base.cpio.gz.tmp"
  mv "$VM_DIR/base.cpio.gz.tmp" "$VM_DIR/base.cpio.gz"
  echo "$want" >"$stamp"
  say "base image: $(du -h "$VM_DIR/base.cpio.gz" | cut -f1)"
}

# copy_tool NAME ROOT: a host program and the shared libraries it loads,
# at the same paths below ROOT; the program goes to ROOT/usr/local/bin,
# which /init puts first in $PATH.
copy_tool() {
  local bin lib
  bin=$(command -v "$1") || die "VM_HOST_TOOLS: no $1 on this machine (lsns, nsenter: util-linux; ps: procps; ip: iproute2)"
  install -D -m 0755 "$(readlink -f "$bin")" "$2/usr/local/bin/$1"
  while read -r lib; do
    [ -e "$2$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$2$lib"
  done < <(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

# The payload, appended as a second archive: a fresh build needs no new base.
# /tests/list names, for each package, its check, its folder below /src and
# its test binary; /src holds what the tests read relative to their folder
# (testdata, and the repository's README.md and docs).
build_payload() {
  local root=$VM_DIR/payload pkg rel bin t
  rm -rf "$root"
  mkdir -p "$root/bin" "$root/tests" "$root/src"
  export CGO_ENABLED=0 GOOS=linux GOARCH=$VM_ARCH
  "$GO" build -trimpath -o "$root/bin/underhood" ./cmd/underhood
  # Beside it, as make install puts it: the containers' first process.
  "$GO" build -trimpath -o "$root/bin/underhood-init" ./cmd/underhood-init
  for pkg in $VM_TEST_PKGS; do
    rel=${pkg#./}
    rel=${rel%/}
    bin=$(tr / - <<<"$rel").test
    "$GO" test -c -trimpath -o "$root/tests/$bin" "$pkg"
    [ -x "$root/tests/$bin" ] || die "$pkg has no tests"
    mkdir -p "$root/src/$rel"
    [ ! -d "$rel/testdata" ] || cp -r "$rel/testdata" "$root/src/$rel/"
    echo "$(test_name "$pkg") $rel $bin" >>"$root/tests/list"
  done
  unset CGO_ENABLED GOOS GOARCH
  # The kernel's modules of $KMODULES, and the order /init loads them in.
  mkdir -p "$root/lib/modules"
  cp "$VM_DIR"/kernel/modules/load "$root/lib/modules/"
  local name file
  while read -r name file _; do
    cp "$VM_DIR/kernel/modules/$file" "$root/lib/modules/"
  done <"$VM_DIR/kernel/modules/load"
  cp README.md "$root/src/"
  [ ! -d docs ] || cp -r docs "$root/src/"
  printf '%s\n' "$VM_TEST_SKIP" >"$root/tests/skip"
  printf '%s\n' "$VM_TEST_MUST" >"$root/tests/must"
  for t in $VM_HOST_TOOLS; do copy_tool "$t" "$root"; done
  file_is_static "$root/bin/underhood" || die "underhood is not static"
  file_is_static "$root/bin/underhood-init" || die "underhood-init is not static"
  [ "$(elf_machine "$root/bin/underhood")" = "$VM_ARCH" ] || die "underhood is not built for $VM_ARCH"
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
    gzip -1 >"$VM_DIR/payload.cpio.gz"
  cat "$VM_DIR/base.cpio.gz" "$VM_DIR/payload.cpio.gz" >"$VM_DIR/initrd.img"
  say "payload: $(du -h "$VM_DIR/payload.cpio.gz" | cut -f1), initrd $(du -h "$VM_DIR/initrd.img" | cut -f1)"
}

# --- boot and judge ----------------------------------------------------------

failures=0

# boot LAYOUT: one VM, its console in $VM_DIR/console-LAYOUT.log, qemu's
# exit status and the seconds it took in console-LAYOUT.status.
boot() {
  local layout=$1 log=$VM_DIR/console-$1.log rc=0 t0
  local cpu=max machine=pc
  # On arm64, a Cortex-A72 under TCG: -cpu max emulates pointer
  # authentication, which makes every call slow.
  [ "$VM_ARCH" = amd64 ] || cpu=cortex-a72 machine=virt
  [ "$VM_ACCEL" = tcg ] || cpu=host
  local qemu=(timeout -k 5 "$VM_TIMEOUT" "$QEMU"
    -accel "$VM_ACCEL" -machine "$machine" -cpu "$cpu" -smp 1 -m 512
    -nographic -no-reboot -nodefaults -serial stdio -nic none
    -kernel "$VM_DIR/kernel/vmlinuz" -initrd "$VM_DIR/initrd.img"
    -append "console=$CONSOLE quiet panic=-1 underhood_cgroup=$layout")
  t0=$(date +%s%N)
  if [ "$VM_VERBOSE" = 1 ]; then
    "${qemu[@]}" </dev/null 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  else
    "${qemu[@]}" </dev/null >"$log" 2>&1 || rc=$?
  fi
  # The serial console ends its lines with CR LF.
  sed -i 's/\r$//' "$log"
  echo "$rc $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')" >"$VM_DIR/console-$layout.status"
}

# boot_all: every layout, $VM_JOBS at a time (TCG runs a VM on one host
# core), then the verdicts in order.
boot_all() {
  local layout n=0 jobs=$VM_JOBS rc secs
  [ "$VM_VERBOSE" != 1 ] || jobs=1
  for layout in $VM_LAYOUTS; do
    rm -f "$VM_DIR/console-$layout.status"
    say "booting with cgroup $layout (accel $VM_ACCEL, timeout ${VM_TIMEOUT}s)"
    boot "$layout" &
    n=$((n + 1))
    if [ "$n" -ge "$jobs" ]; then
      wait -n || true
      n=$((n - 1))
    fi
  done
  wait || true
  for layout in $VM_LAYOUTS; do
    read -r rc secs <"$VM_DIR/console-$layout.status" || { rc=255 secs=0; }
    timings+=("$(printf '%-12s %6.1f s' "boot $layout" "$secs")")
    say "cgroup $layout: qemu exit $rc after ${secs}s"
    judge "$layout" "$VM_DIR/console-$layout.log" "$rc"
  done
}

row() { printf '  %-4s  %-6s  %-24s  %s\n' "$@"; }

# judge LAYOUT LOG QEMU_STATUS: PASS or FAIL for every check of $CHECKS.
judge() {
  local layout=$1 log=$2 rc=$3 results name line detail bad=0
  if grep -q "^UHVM-SUMMARY-END $layout" "$log"; then
    results=$(sed -n "/^UHVM-SUMMARY-BEGIN $layout\$/,/^UHVM-SUMMARY-END/p" "$log" | sed -n 's/^UHVM-SUMMARY //p')
  else
    # No summary: the boot hung, crashed or timed out; use the live reports.
    results=$(sed -n "s/^.*UHVM-RESULT $layout //p" "$log")
  fi
  for name in $CHECKS; do
    line=$(grep -m1 -E "^(PASS|FAIL) $name( |\$)" <<<"$results" || true)
    detail=${line#* "$name"}
    detail=${detail# }
    case $line in
      PASS*) row PASS "$layout" "$name" "$detail" ;;
      FAIL*) row FAIL "$layout" "$name" "$detail"; bad=$((bad + 1)) ;;
      *) row FAIL "$layout" "$name" "no report on the console (missing marker)"; bad=$((bad + 1)) ;;
    esac
  done
  # A check /init reports but this script does not know: keep them in step.
  while read -r line; do
    [ -n "$line" ] || continue
    name=$(cut -d' ' -f2 <<<"$line")
    grep -qw -- "$name" <<<"$CHECKS" && continue
    row FAIL "$layout" "$name" "reported, but not in vm-test.sh's CHECKS: $line"
    bad=$((bad + 1))
  done <<<"$results"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    row FAIL "$layout" boot "timed out after ${VM_TIMEOUT}s"
    bad=$((bad + 1))
  elif ! grep -q "^UHVM-SUMMARY-END $layout" "$log"; then
    row FAIL "$layout" boot "no UHVM-SUMMARY-END marker (qemu exit $rc): /init crashed or the kernel panicked"
    bad=$((bad + 1))
  elif [ "$rc" != 0 ]; then
    row FAIL "$layout" boot "qemu exit $rc"
    bad=$((bad + 1))
  fi
  if [ "$bad" -gt 0 ]; then
    say "$layout: $bad failed; the serial console is in $log"
    evidence "$layout" "$log" "$results"
    if [ "${CI:-}" = true ]; then
      say "$layout: the whole console log (CI):"
      sed 's/^/  | /' "$log"
    fi
  fi
  failures=$((failures + bad))
}

# evidence LAYOUT LOG RESULTS: what the console showed for each failed
# check, or its last lines when /init never finished.
evidence() {
  local layout=$1 log=$2 results=$3 name
  while read -r name; do
    [ -n "$name" ] || continue
    say "$layout $name, as the console showed it:"
    awk -v start="UHVM-CHECK $layout $name" -v layout="$layout" -v name="$name" '
      $0 == start { on = 1 }
      on { print }
      on && $1 == "UHVM-RESULT" && $2 == layout && $4 == name { exit }' "$log" >"$VM_DIR/evidence-$layout.txt" || true
    # A test binary's check: each failed test's own lines (from its
    # '=== RUN' to its '--- FAIL'), which the check's last lines miss
    # when other tests ran after it.
    awk '/^=== RUN/ { buf = "" } { buf = buf $0 "\n" }
      /^--- FAIL:/ { printf "%s", buf; buf = ""; n++ }
      END { exit n == 0 }' "$VM_DIR/evidence-$layout.txt" >"$VM_DIR/evidence-$layout-failed.txt" &&
      cp "$VM_DIR/evidence-$layout-failed.txt" "$VM_DIR/evidence-$layout.txt"
    tail -n 80 "$VM_DIR/evidence-$layout.txt" | sed 's/^/  | /' || true
    rm -f "$VM_DIR/evidence-$layout.txt" "$VM_DIR/evidence-$layout-failed.txt"
  done < <(sed -n 's/^FAIL \([^ ]*\).*/\1/p' <<<"$results")
  if ! grep -q "^UHVM-SUMMARY-END $layout" "$log"; then
    say "$layout: the console's last lines:"
    tail -n 40 "$log" | sed 's/^/  | /'
  fi
}

main() {
  mkdir -p "$VM_DIR"
  phase "installing what is missing"
  install_tools
  phase_end "install"
  phase "fetching the $VM_ARCH kernel"
  fetch_kernel
  check_kernel_config
  fetch_busybox
  phase_end "kernel"
  phase "building the images"
  build_base
  build_payload
  phase_end "build"
  if [ "$VM_DRY_RUN" = 1 ]; then
    say "dry run: built $VM_DIR/initrd.img for $VM_ARCH ($(cat "$VM_DIR/kernel/VERSION")); would boot $VM_LAYOUTS with:"
    say "  $QEMU -machine $([ "$VM_ARCH" = amd64 ] && echo pc || echo virt) -kernel $VM_DIR/kernel/vmlinuz -initrd $VM_DIR/initrd.img -append console=$CONSOLE"
    return
  fi
  phase "booting $VM_LAYOUTS ($VM_ARCH), $VM_JOBS at a time"
  boot_all
  phase_end "boots"
  say "timings:"
  printf '  %s\n' "${timings[@]}"
  if [ "$failures" -gt 0 ]; then
    say "FAIL: $failures checks failed"
    exit 1
  fi
  say "PASS: every check on every layout ($VM_LAYOUTS, $VM_ARCH)"
}

main "$@"
