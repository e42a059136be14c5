#!/usr/bin/env bash
# The article's "putting it all together" script, kept faithful to its text
# for the benchmark in scripts/bench: the same commands in the same order.
# Differences, each needed to run it unattended and leave the machine clean:
# - it runs the command given as arguments instead of an interactive shell;
# - BusyBox comes from $BUSYBOX (default /bin/busybox), not ~/Downloads;
# - the cgroup lives under the one parent named underhood, as all of the
#   lab's cgroups do, and cgroup v2 gets its own file names (cgroup.procs,
#   memory.max) where the article's text is cgroup v1;
# - it is run as root, so the article's sudo prefixes are dropped.
# Usage: sudo scripts/container.sh [CMD...]   (default: /bin/busybox sh)
set -u

memoryLimit=7340032 # 7 MB
pid=$$
busybox=${BUSYBOX:-/bin/busybox}
top=${CONTAINER_TMP:-/tmp/container}

if [ -d /sys/fs/cgroup/memory ]; then
  cgDir=/sys/fs/cgroup/memory/underhood/script-$pid
  tasks=tasks limit=memory.limit_in_bytes
else
  cgDir=/sys/fs/cgroup/underhood/script-$pid
  tasks=cgroup.procs limit=memory.max
  mkdir -p /sys/fs/cgroup/underhood
  grep -qw memory /sys/fs/cgroup/underhood/cgroup.subtree_control ||
    echo +memory >/sys/fs/cgroup/underhood/cgroup.subtree_control
fi
mkdir -p "$(dirname "$cgDir")"

[ -d "$top" ] || madeTop=1
mkdir -p "$top/$pid"
cd "$top/$pid" || exit 1

mkdir -p bin dev etc proc sys

cp "$busybox" bin
chmod +x bin/busybox

mount -t proc /proc proc

mkdir "$cgDir"
echo $pid >"$cgDir/$tasks"
echo $memoryLimit >"$cgDir/$limit"

touch dev/urandom
mount --bind /dev/urandom dev/urandom

if [ $# -eq 0 ]; then set -- /bin/busybox sh; fi
unshare -f -p --mount-proc="$PWD/proc" chroot . "$@"
status=$?

# Back to the parent group first, then the group can go.
if [ "$tasks" = tasks ]; then
  echo $pid >"$cgDir/../tasks"
else
  echo $pid >/sys/fs/cgroup/cgroup.procs
fi
rmdir "$cgDir"

umount dev/urandom
umount proc
cd / && rm -rf "${top:?}/$pid"
# The directory above it too, if this script made it and it is empty now.
[ -z "${madeTop:-}" ] || rmdir "$top" 2>/dev/null
exit $status
