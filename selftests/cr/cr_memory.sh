#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# 256 MiB of patterned anonymous memory is byte-identical: checked after a restart and after a second checkpoint/restart cycle.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

cr_start cr_target memory $T
tap_check "the target is ready" cr_ready
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart with the same pid" cr_cycle $n
	tap_check "cycle $n: the 256 MiB pattern" cr_round $n
done
cr_cleanup
tap_finish
