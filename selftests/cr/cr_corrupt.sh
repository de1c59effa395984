#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Corrupt and truncated images end in a clean error: restart exits non-zero with a reason, no
# half-restored process is left, the kernel stays clean (vm-run checks its log), and the intact
# image still restarts afterwards.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 10

cr_start cr_counter $T/count 10
wait_for test -s $T/count
ckpt $PID -o $T/img --kill --log $T/ckpt.log
wait $PID 2>/dev/null
tap_check "the intact image passes restart --dry-run" cr_dry_run $T/img
size=$(wc -c <$T/img)
tap_ok $((size < 4096)) "the image holds a whole process ($size bytes)"

# flip OFFSET: a copy of the image with the byte at OFFSET inverted.
flip() {
	cp $T/img $T/bad
	cr_flip $T/bad $1
}

# try IMAGE WHAT: restart must fail, say why, and leave no process with the pid.
bad=0
tried=0
try() {
	tried=$((tried + 1))
	rm -f $T/rlog
	restart -i $1 --log $T/rlog >/dev/null 2>$T/rerr
	st=$?
	if [ $st -eq 0 ] || kill -0 $PID 2>/dev/null; then
		echo "# $2: restart exited $st, pid $PID alive: $(kill -0 $PID 2>/dev/null && echo yes)"
		bad=$((bad + 1))
		kill -9 $PID 2>/dev/null
		return
	fi
	# A dry run refuses what restart refuses.
	if restart --dry-run -i $1 >/dev/null 2>&1; then
		echo "# $2: restart --dry-run passed an image restart refused"
		bad=$((bad + 1))
	fi
	# The kernel names the offset; restart's own checks of the image's first records name the
	# problem.
	if ! cat $T/rlog $T/rerr 2>/dev/null | grep -qE "error at image offset [0-9]+: .|^restart: ."; then
		echo "# $2: no reason given: $(cat $T/rlog $T/rerr 2>/dev/null)"
		bad=$((bad + 1))
	fi
}

# Every record header (under KASAN, the first record of each kind: one decoder each, without
# the ten VMA records that would go through the same one), then a spread of offsets through the
# payloads and pages.
headers=$(crinfo $T/img | sed -n 's/^  @\([0-9]*\) *\([A-Z_]*\).*/\1 \2/p')
[ "$CR_KERNEL" = debug ] && headers=$(echo "$headers" | awk '!seen[$2]++')
for off in $(echo "$headers" | cut -d' ' -f1); do
	flip $off
	try $T/bad "kind byte at $off"
	flip $((off + 4))
	try $T/bad "length byte at $((off + 4))"
done
off=0
# Fewer under KASAN, whose time goes into each restart; the count is in the TAP line.
stride=$(scale 997 2999)
while [ $off -lt $size ]; do
	flip $off
	try $T/bad "byte $off"
	off=$((off + stride))
done
tap_ok $bad "$tried corrupted images each fail cleanly with a reason"

bad=0
tried=0
for cut in 4 8 100 1000 $((size / 2)) $((size - 40)) $((size - 1)); do
	head -c $cut $T/img >$T/short
	try $T/short "cut at $cut"
done
tap_ok $bad "$tried truncated images each fail cleanly with a reason"

# A file the image needs is gone, then replaced by another inode: restart refuses before it
# changes anything, naming the problem.
mv $T/count $T/count.saved
restart -i $T/img --log $T/rlog >/dev/null 2>&1
tap_ok $(($? == 0)) "a missing file fails the restart"
tap_check "... with 'cannot be reopened' on logfd" grep -q "cannot be reopened" $T/rlog
cp $T/count.saved $T/count
restart -i $T/img --log $T/rlog >/dev/null 2>&1
tap_ok $(($? == 0)) "a replaced file (same path, other inode) fails the restart"
tap_check "... with 'inode differs' on logfd" grep -q "inode differs" $T/rlog
mv -f $T/count.saved $T/count

restart -i $T/img --log $T/rlog >/dev/null &
RESTARTER=$!
tap_check "the intact image still restarts" wait_for comm_is $PID cr_counter
last=$(tail -n 1 $T/count)
tap_check "and the counter goes on" wait_for sh -c "[ \$(tail -n 1 $T/count) -gt $((last + 2)) ]"
cr_cleanup
tap_finish
