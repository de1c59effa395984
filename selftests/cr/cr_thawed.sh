#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Thawed checkpoints (ckpt --thawed): the memory of a target that keeps rewriting it is copied
# while it runs, and the frozen round sends only what changed since. Restart gives back the
# memory as it was at the freeze: no torn page, no stale one, no write missed. The rounds add no
# fault to the target, where soft-dirty tracking (the positive control) adds one per page
# written. The image is a precopy image whose pages the frozen round keeps; it streams too.
# Between the rounds and the freeze (cr_thaw_steps), memory written from outside through
# /proc/PID/mem or process_vm_writev (no dirty bit in the page tables), pages moved, dropped, freed lazily and
# written again, a transparent huge page written, and a child forked come back as they were at
# the freeze. A second thawed checkpoint during the rounds of a first is refused. Last, the
# writer runs in a cgroup whose memory.high sends a part of it to swap on zram: pages swapped out
# and in during the rounds hide their writes from the dirty bit, and must be copied anyway.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 26

MIB=$(scale 64 4)
# Memory is charged to a cgroup's memory controller only from when the cgroup has it: on for
# every cgroup from the start, so that the swap case at the end can limit the writer.
echo +memory >/sys/fs/cgroup/cgroup.subtree_control

# minflt PID: the minor faults PID took (field 10 of /proc/PID/stat, after the comm).
minflt() {
	sed 's/.*) //' /proc/"$1"/stat | cut -d' ' -f8
}

# no_new_faults PID BEFORE: PID took no fault since it had taken BEFORE.
no_new_faults() {
	now=$(minflt "$1")
	echo "minor faults: $2 before, $now after"
	[ "$now" -eq "$2" ]
}

# new_faults PID BEFORE: PID took faults since.
new_faults() {
	now=$(minflt "$1")
	echo "minor faults: $2 before, $now after"
	[ "$now" -gt "$2" ]
}

cr_start cr_writer $T $MIB 16 2
tap_check "the writer rewrites $MIB MiB, in two threads" cr_ready
tap_check "its memory checks out before any checkpoint" cr_round 1

faults=$(minflt $PID)
sleep 1
tap_check "the writer takes no fault on its own" no_new_faults $PID $faults

thawed() {
	ckpt $PID -o $T/thawed.img --thawed --stats --log $T/thawed.log 2>$T/thawed.err ||
		{ cat $T/thawed.log $T/thawed.err; return 1; }
	sed 's/^/# /' $T/thawed.log $T/thawed.err
}
faults=$(minflt $PID)
tap_check "ckpt --thawed checkpoints the running writer ($MIB MiB)" thawed
sed 's/^/# /' $T/thawed.log $T/thawed.err 2>/dev/null
tap_check "the rounds added no fault to the writer" no_new_faults $PID $faults
tap_check "the writer runs on, its memory intact" cr_round 2
echo "# the writer's longest stall around the thawed checkpoint: $(cat $T/stall.2) us"
tap_check "the image holds a precopy image, then the frozen round with KEEP records" sh -c "
	crinfo $T/thawed.img >$T/thawed.info &&
	grep -q 'header: format [0-9]* precopy' $T/thawed.info &&
	grep -q 'PRECOPY ' $T/thawed.info &&
	grep -q 'KEEP ' $T/thawed.info &&
	grep -q 'PAGES ' $T/thawed.info"

# forget_images: the images restored already, whose restarts hold them open at most; the
# guest's /tmp is RAM, which the swap case at the end needs, and nine images of the writer do
# not fit in it.
forget_images() {
	rm -f $T/*.img $T/img.*
}

CR_CKPT_FLAGS=--thawed
for n in 1 2; do
	forget_images
	tap_check "cycle $n: ckpt --thawed --kill, and restart" cr_cycle $n
	tap_check "cycle $n: the restored memory is the memory at the freeze" cr_round $((n + 2))
done
CR_CKPT_FLAGS=

# steps_cycle NAME COMMAND...: a thawed checkpoint of PID into $T/NAME.img with COMMAND run
# between its rounds and its freeze, then a restart of it, as cr_cycle does.
steps_cycle() {
	name=$1
	shift
	forget_images
	cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)
	cr_thaw_steps $PID "$cg" $T/$name.img -- "$@" || return 1
	cr_dry_run $T/$name.img || return 1
	cr_restart $T/$name.img $T/restart.log.$name cr_writer
}
tap_check "writes through /proc/PID/mem between the rounds and the freeze" \
	steps_cycle gup cr_poke write $PID $T
tap_check "what /proc/PID/mem wrote is restored" cr_poke verify $PID $T
tap_check "the memory after the outside writes is the memory at the freeze" cr_round 5
tap_check "writes through process_vm_writev between the rounds and the freeze" \
	steps_cycle vmwrite cr_poke vmwrite $PID $T
tap_check "what process_vm_writev wrote is restored" cr_poke verify $PID $T
echo "# transparent huge pages of the writer: $(grep AnonHugePages /proc/$PID/smaps_rollup)"
tap_check "mremap, MADV_DONTNEED, MADV_FREE, a huge page written and a fork, before the freeze" \
	steps_cycle reshape sh -c "kill -USR2 $PID && until [ -e $T/reshaped.1 ]; do sleep 0.05; done"
tap_check "the pages moved, dropped, freed and rewritten are as they were at the freeze" \
	cr_round 6
has_child() {
	grep -qs "^PPid:[[:space:]]*$PID\$" /proc/[0-9]*/status
}
tap_check "the child forked before the freeze is restored too" has_child
# Each harvest clears the dirty state the other would need: one tracker per address space.
tap_check "a second thawed checkpoint during the first one's rounds is refused (EBUSY)" \
	steps_cycle busy sh -c "! ckpt $PID -o /dev/null --thawed 2>$T/busy.err &&
		grep -q 'another thawed checkpoint tracks this address space' $T/busy.err"
tap_check "the first one's image restores the memory at its freeze" cr_round 7

# Streamed: the precopy image and the frozen round through one pipe.
stream() {
	ckpt $PID -o - --thawed --kill | restart -i - --detach >$T/detached || return 1
	wait $RESTARTER 2>/dev/null
	RESTARTER=
	[ "$(cat $T/detached)" = "$PID" ]
}
tap_check "ckpt --thawed -o - | restart -i - --detach" stream
tap_check "the streamed restart's memory is the memory at the freeze" cr_round 8

# The positive control: soft-dirty write-protects every page, so each first write faults.
faults=$(minflt $PID)
echo 4 >/proc/$PID/clear_refs
sleep 1
tap_check "soft-dirty tracking (clear_refs 4) makes the same writer fault" new_faults $PID $faults

# swap_cycle: a thawed cycle of the writer while it swaps: zram for swap, and a memory.high on
# its cgroup below what it holds.
swap_cycle() {
	if ! grep -q zram0 /proc/swaps; then
		echo $((4 * MIB))M >/sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null &&
			swapon /dev/zram0 || return 1
	fi
	cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)
	# A quarter of the writer's memory less than the cgroup holds: enough to swap, not to
	# thrash; memory.high reclaims and throttles where memory.max would kill.
	echo $(($(cat "$cg/memory.current") - (MIB << 18))) >"$cg/memory.high" || return 1
	wait_for sh -c "[ \$(cat $cg/memory.swap.current) -gt 0 ]" ||
		{ echo "the writer does not swap: $(cat "$cg/memory.current") bytes in memory"; return 1; }
	echo "the writer's memory in swap: $(cat "$cg/memory.swap.current") bytes"
	CR_CKPT_FLAGS=--thawed
	forget_images
	cr_cycle swap
	st=$?
	CR_CKPT_FLAGS=
	return $st
}
tap_check "ckpt --thawed --kill of the writer while it swaps, and restart" swap_cycle
tap_check "pages swapped out and in during the rounds are as they were at the freeze" \
	cr_round 9
swapoff /dev/zram0 2>/dev/null && echo 1 >/sys/block/zram0/reset

for status in /proc/[0-9]*/status; do
	grep -qs "^PPid:[[:space:]]*$PID\$" "$status" && kill -9 "$(basename "$(dirname "$status")")"
done
cr_cleanup
# The later tests' cgroups go without the memory controller again.
echo -memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
tap_finish
