#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# State cr cannot checkpoint yet is refused, with its errno and a one-line reason on logfd, and
# the process goes on running, thawed.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 63

grows() {
	[ "$(tail -n 1 $T/count.$1)" -gt "$2" ]
}
thawed() {
	cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)
	grep -qx "frozen 0" $cg/cgroup.events && [ "$(cat $cg/cgroup.freeze)" = 0 ]
}
refused() {
	! ckpt $PID -o $T/img --log $T/log.$1 2>$T/err.$1
}

# kind, then the reason the kernel must give.
while read -r kind reason; do
	cr_start cr_refuse $kind $T/count.$kind
	tap_check "$kind: the target runs" wait_for grows $kind 2
	tap_check "$kind: ckpt fails" refused $kind
	tap_check "$kind: logfd says '$reason'" grep -q "$reason" $T/log.$kind
	tap_check "$kind: ckpt reports EOPNOTSUPP" grep -q "not supported" $T/err.$kind
	tap_check "$kind: the image holds nothing a restart could mistake for good" \
		sh -c "[ ! -s $T/img ] || ! crinfo $T/img"
	tap_check "$kind: the cgroup is thawed" thawed
	last=$(tail -n 1 $T/count.$kind)
	tap_check "$kind: the target still runs" wait_for grows $kind $((last + 2))
	# Its children too (epollelsewhere has one).
	echo 1 >/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)/cgroup.kill
	wait
done <<'LIST'
socket socket not supported
timer POSIX timers are not supported
gsbase GS base in use
lease a lease on a file (F_SETLEASE) is not supported
timens task is in another time namespace, or made one for its children
epollelsewhere an epoll watches a file that neither its descriptor table nor an earlier task's holds
LIST

# Interrupted system calls whose state cr cannot recreate: the test waits until the target
# sleeps in the call, so the checkpoint finds it there.
in_syscall() {
	case " $2 " in *" $(cut -d' ' -f1 /proc/$1/syscall 2>/dev/null) "*) return 0 ;; esac
	return 1
}
thawed_in() {
	grep -qx "frozen 0" /sys/fs/cgroup/cr-$1/cgroup.events && in_syscall "$1" "$2"
}
# kind, the syscall numbers it sleeps in (restart_syscall is 219), the reason.
while read -r kind nrs reason; do
	nrs=$(echo $nrs | tr , ' ')
	ckpt run -- cr_refuse $kind /dev/null >/dev/null 2>&1 &
	PID=$!
	tap_check "$kind: the target sleeps in its call" wait_for in_syscall $PID "$nrs"
	ckpt $PID -o $T/img --log $T/log.$kind 2>/dev/null
	tap_ok $(($? == 0)) "$kind: ckpt fails"
	tap_check "$kind: logfd says '$reason'" grep -q "$reason" $T/log.$kind
	tap_check "$kind: thawed, the target sleeps in its call again" wait_for thawed_in $PID "$nrs"
	kill -9 $PID
	wait
done <<'LIST'
poll 7,219 unsupported restart block
futex 202,219 unsupported restart block
sigsuspend 130 temporary signal mask
LIST

# A process in its own mount namespace: its paths mean something else here.
ckpt run -- unshare -m cr_counter $T/count.mntns 10 >/dev/null 2>&1 &
PID=$!
tap_check "mntns: the target runs" wait_for grows mntns 2
ckpt $PID -o $T/img --log $T/log.mntns 2>/dev/null
tap_ok $(($? == 0)) "mntns: ckpt fails"
tap_check "mntns: logfd says 'another mount namespace'" grep -q "another mount namespace" $T/log.mntns
last=$(tail -n 1 $T/count.mntns)
tap_check "mntns: the target still runs" wait_for grows mntns $((last + 2))
kill -9 $PID
wait

# A process outside the subtree in the same cgroup: ckpt refuses before freezing anything.
mkdir -p /sys/fs/cgroup/cr-mixed
sh -c 'echo $$ > /sys/fs/cgroup/cr-mixed/cgroup.procs; exec sleep 60' &
other=$!
sh -c 'echo $$ > /sys/fs/cgroup/cr-mixed/cgroup.procs; exec sleep 60' &
target=$!
wait_for sh -c "grep -qx $other /sys/fs/cgroup/cr-mixed/cgroup.procs &&
	grep -qx $target /sys/fs/cgroup/cr-mixed/cgroup.procs"
ckpt $target -o $T/img 2>$T/err.mixed
tap_ok $(($? == 0)) "ckpt refuses a cgroup with tasks outside the target's subtree"
tap_check "... and says which" grep -q "outside pid $target's subtree" $T/err.mixed
tap_check "... and leaves the cgroup thawed" grep -qx "frozen 0" /sys/fs/cgroup/cr-mixed/cgroup.events
kill $other $target
wait
rmdir /sys/fs/cgroup/cr-mixed

# The pid of a live process cannot be taken by a restart.
cr_start cr_counter $T/count.busy 10
wait_for test -s $T/count.busy
ckpt $PID -o $T/img.busy --log $T/log.busy
restart -i $T/img.busy 2>$T/err.busy
tap_ok $(($? == 0)) "restart refuses an image whose pid is in use"
tap_check "... and says so" grep -q "pid $PID is in use" $T/err.busy
kill -9 $PID
wait
cr_cleanup
tap_finish
