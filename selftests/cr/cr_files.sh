#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# file offsets (shared by dup), O_APPEND, a directory and memory devices survive: checked after a restart and after a second checkpoint/restart cycle.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

cr_start cr_target files $T
tap_check "the target is ready" cr_ready
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart with the same pid" cr_cycle $n
	tap_check "cycle $n: shared offset, O_APPEND, directory fd, /dev/zero, /dev/urandom" cr_round $n
done
cr_cleanup
tap_finish
