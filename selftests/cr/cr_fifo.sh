#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# FIFOs (named pipes): a shell pipeline through a FIFO, checkpointed twice in mid-flight with the
# FIFO's buffer full, restarts with the same bytes buffered: the hash comes out right. Before the
# second restart, the same image is refused, with a reason and no task left, while another FIFO
# stands at the path, while the FIFO is open outside the restart, and with its FILE record
# corrupted. A FIFO also open outside the tree fails the checkpoint.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 16

BYTES=$(scale 10485760 1048576)
want=$(yes | head -c $BYTES | sha256sum | cut -d' ' -f1)
mkfifo $T/fifo
# The consumer stops at a gate after each block it reads, so that each checkpoint finds the
# producer blocked on a full FIFO however fast the machine is; a gate opens after each cycle.
at_gate() { tree_snapshot $PID >$T/snap && [ "$(wc -l <$T/snap)" -ge 5 ] && [ ! -s $T/sum ]; }
block='dd bs=65536 count=1 2>/dev/null'
gate() { echo "while [ ! -e $T/gate.$1 ]; do sleep 0.05; done"; }
cr_start sh -c "yes | head -c $BYTES >$T/fifo &
	{ $block; $(gate 1); $block; $(gate 2); cat; } <$T/fifo | sha256sum >$T/sum.tmp &&
	mv $T/sum.tmp $T/sum"
tap_check "yes | head -c $BYTES >FIFO, and sha256sum <FIFO, run" wait_for at_gate
tap_check "cycle 1: checkpointed in mid-flight" at_gate
tap_check "cycle 1: checkpoint, kill and restart" cr_cycle 1
touch $T/gate.1
crinfo $T/img.1 >$T/info
tap_check "crinfo shows the FIFO by its path, and its buffered bytes" \
	sh -c "grep -q 'FILE .*path=$T/fifo .*type=fifo' $T/info && grep -q 'PIPE .*buffered=[1-9]' $T/info"

tap_check "cycle 2: checkpointed in mid-flight" at_gate
exec 5<>$T/fifo
ckpt $PID -o $T/img.leak --log $T/leak.log 2>$T/leak.err
tap_ok $(($? == 0)) "a FIFO also open outside the tree fails the checkpoint"
tap_check "... saying it is held outside" grep -q "held by a task outside the checkpoint" $T/leak.log
exec 5>&-
tap_check "cycle 2: checkpoint and kill" \
	ckpt $PID -o $T/img.2 --kill --log $T/ckpt.log.2
tap_check "cycle 2: the image passes restart --dry-run" cr_dry_run $T/img.2
wait $RESTARTER 2>/dev/null
RESTARTER=
wait_for pid_gone $PID

mv $T/fifo $T/fifo.saved
mkfifo $T/fifo
tap_check "another FIFO at the path: restart refuses it" cr_refused $T/img.2 "inode differs"
rm $T/fifo
mv $T/fifo.saved $T/fifo
exec 5<>$T/fifo
tap_check "the FIFO open outside the restart: restart refuses it" \
	cr_refused $T/img.2 "open outside the restart"
exec 5>&-
# The FIFO's FILE record with no PIPE to open: its object objref (payload offset 64) zeroed.
cr_corrupt $T/img.2 'FILE.*type=fifo' 64 '\0\0\0\0'
tap_check "a FIFO record naming no pipe: restart refuses it at its offset" \
	cr_refused $T/bad "error at image offset $at"

tap_check "cycle 2: restart" cr_restart $T/img.2 $T/restart.log.2 sh
touch $T/gate.2
tap_check "the pipeline finishes" wait_long 300 test -s $T/sum
tap_check "the hash is right" test "$(cut -d' ' -f1 $T/sum)" = "$want"
tap_check "the FIFO is still a FIFO at its path" test -p $T/fifo
cr_cleanup
tap_finish
