#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A checkpoint that fails half-way through its image leaves the application as it was: the file
# system of the image fills up, or the reader of `ckpt -o -` goes away. ckpt fails with the
# reason, --kill kills nothing, the tree runs thawed with its memory intact, and what was
# written is refused by restart, never taken for an image.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 15

# Enough memory that the image cannot fit in the small file system nor in one pipe buffer.
mib=$(scale 8 4)
cr_start cr_writer $T $mib 0
tap_check "a writer of $mib MiB runs" cr_ready

thawed() {
	cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup)
	kill -0 $PID && grep -qx "frozen 0" $cg/cgroup.events && [ "$(cat $cg/cgroup.freeze)" = 0 ]
}
refused() {
	! restart --dry-run -i "$1" </dev/null
}

# The image's file system fills up (a 1 MiB tmpfs).
mkdir $T/small
mount -t tmpfs -o size=1m small $T/small
ckpt $PID -o $T/small/img --kill --log $T/log.full 2>$T/err.full
tap_ok $(($? == 0)) "full file system: ckpt --kill fails"
tap_check "full file system: it says so" grep -qi "no space left" $T/err.full $T/log.full
echo "# ckpt said: $(tail -n 1 $T/err.full)"
tap_check "full file system: restart refuses what was written" refused $T/small/img
tap_check "full file system: the writer was not killed, and runs thawed" thawed
tap_check "full file system: its memory is intact" cr_round 1
umount $T/small

# The reader of the stream exits after 64 KiB.
{
	ckpt $PID -o - --kill --log $T/log.pipe 2>$T/err.pipe
	echo $? >$T/rc.pipe
} | head -c 65536 >$T/partial
tap_check "reader gone: ckpt --kill fails" sh -c "[ \"\$(cat $T/rc.pipe)\" != 0 ]"
tap_check "reader gone: it says so" grep -qi "broken pipe" $T/err.pipe $T/log.pipe
echo "# ckpt said: $(tail -n 1 $T/err.pipe)"
tap_check "reader gone: restart refuses the 64 KiB it read" refused $T/partial
tap_check "reader gone: the writer was not killed, and runs thawed" thawed
tap_check "reader gone: its memory is intact" cr_round 2

# And after both, a checkpoint that can complete does, and restores.
tap_check "a whole checkpoint after both" cr_cycle 3
tap_check "the restored writer's memory is intact" cr_round 3
tap_check "a second cycle" cr_cycle 4
tap_check "the writer's memory is intact again" cr_round 4

cr_cleanup
tap_finish
