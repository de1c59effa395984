#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What a change of credentials resets comes back after it, for a non-root tree: the child's
# parent-death signal, the dumpable mode (so /proc/PID stays the user's), and no_new_privs.
# After two cycles, the parent dies and the child gets its signal.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 8

owner() { [ "$(stat -c %u /proc/$PID/status)" = 1000 ]; }
chmod 777 $T
CR_AS_USER=1000 cr_start cr_tree pdeath $T
tap_check "the non-root parent and child are ready" cr_ready
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart" cr_cycle $n
	tap_check "cycle $n: dumpable, no_new_privs, and the child answers" cr_round $n
	tap_check "cycle $n: /proc/PID belongs to the user (the process is dumpable)" owner
done
kill -9 $PID
tap_check "the parent dies, and the child gets its parent-death signal" wait_for test -s $T/fired
cr_cleanup
tap_finish
