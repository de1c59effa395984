#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Pipes: 60 KiB of unread data stays in a pipe whose ends two processes hold; a shell pipeline
# checkpointed in mid-flight gives the right hash; a pipe end held outside the tree fails the
# checkpoint unless --allow-leaks. Each through two checkpoint/restart cycles.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 17

cr_start cr_tree pipe $T
tap_check "pipe: 60 KiB wait in the pipe" cr_ready
for n in 1 2; do
	tap_check "pipe, cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "pipe, cycle $n: the pipe still holds the 60 KiB, its writer alive" cr_round $n
done
crinfo $T/img.2 >$T/info
tap_check "pipe: crinfo shows the pipe and the two processes sharing it" \
	sh -c "grep -q 'PIPE.*buffered=' $T/info && grep -q 'pipe: ' $T/info"
cr_cleanup

# The pipeline: checkpointed in mid-stream, twice, with its pipes full; the hash must be the one
# of the data. The consumer stops at a gate after each block it passes on, so that each
# checkpoint finds data in flight however fast the machine is; a gate opens after each cycle.
T=$(mktemp -d /tmp/cr-test.XXXXXX)
RESTARTER=
BYTES=$(scale 104857600 10485760)
want=$(yes | head -c $BYTES | sha256sum | cut -d' ' -f1)
at_gate() { tree_snapshot $PID >$T/snap && [ "$(wc -l <$T/snap)" -ge 5 ] && [ ! -s $T/sum ]; }
block='dd bs=65536 count=1 2>/dev/null'
gate() { echo "while [ ! -e $T/gate.$1 ]; do sleep 0.05; done"; }
cr_start sh -c "yes | head -c $BYTES | { $block; $(gate 1); $block; $(gate 2); cat; } |
	sha256sum >$T/sum.tmp && mv $T/sum.tmp $T/sum"
tap_check "pipeline: yes | head -c $BYTES | sha256sum runs" wait_for at_gate
for n in 1 2; do
	tap_check "pipeline, cycle $n: checkpointed in mid-flight" at_gate
	tap_check "pipeline, cycle $n: checkpoint, kill and restart" cr_cycle $n
	touch $T/gate.$n
done
tap_check "pipeline: it finishes" wait_long 300 test -s $T/sum
tap_check "pipeline: the hash is right" test "$(cut -d' ' -f1 $T/sum)" = "$want"
wait
cr_cleanup

# A leak: the write end of the root's pipe is held by its parent, outside the checkpoint.
T=$(mktemp -d /tmp/cr-test.XXXXXX)
mkdir -p /sys/fs/cgroup/cr-leak
cr_tree leak $T /sys/fs/cgroup/cr-leak >/dev/null 2>&1 &
outside=$!
wait_for test -s $T/ready
wait_for test -s $T/pid
PID=$(cat $T/pid)
ckpt $PID -o $T/img --log $T/log 2>$T/err
tap_ok $(($? == 0)) "leak: ckpt fails"
said() { grep -q "a pipe's other end is held by a task outside the checkpoint" $T/log || cat $T/log $T/err; }
tap_check "leak: logfd says a pipe's other end is held outside" said
tap_check "leak: ckpt --allow-leaks takes it anyway" ckpt $PID -o $T/img --allow-leaks
tap_check "leak: the tree still runs" kill -0 $PID
kill -9 $PID $outside
wait
rmdir /sys/fs/cgroup/cr-leak
cr_cleanup
tap_finish
