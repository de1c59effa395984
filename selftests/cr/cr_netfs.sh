#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Images and logs on a network filesystem: the 9p directory that make check shares with the guest
# at /mnt/share (as NFS would be). 9p's unbuffered writes return their count without advancing
# the kernel's iterator; the module once wrote the same bytes there forever.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 5

DIR=/mnt/share/cr_netfs.$$
tap_check "a 9p directory is shared at /mnt/share" sh -c "grep -q ' /mnt/share 9p ' /proc/mounts && mkdir $DIR"
cr_start cr_counter $T/count 10
wait_for test -s $T/count
checkpoint() {
	ckpt $PID -o $DIR/img --kill --log $DIR/ckpt.log --stats 2>$DIR/stats || { cat $DIR/ckpt.log; return 1; }
	sed 's/^/# /' $DIR/stats
}
tap_check "ckpt writes its image and log to 9p" checkpoint
tap_check "the image there is whole" sh -c "crinfo $DIR/img >/dev/null"
tap_check "restart reads it back from 9p" cr_restart $DIR/img $DIR/restart.log cr_counter
last=$(tail -n 1 $T/count)
tap_check "and the counter goes on" wait_for sh -c "[ \$(tail -n 1 $T/count) -gt $((last + 2)) ]"
rm -rf $DIR
cr_cleanup
tap_finish
