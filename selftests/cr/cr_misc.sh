#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Task scalars survive: robust futex list, clear_child_tid, personality, umask, comm, the
# parent-death signal, an rlimit and an armed ITIMER_REAL; checked after a restart and after a
# second cycle.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

cr_start cr_target misc $T
tap_check "the target is ready" cr_ready
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart with the same pid" cr_cycle $n
	tap_check "cycle $n: robust list, tid address, personality, umask, comm, pdeath signal, rlimit, itimer" cr_round $n
done
cr_cleanup
tap_finish
