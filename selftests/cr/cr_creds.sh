#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Credentials survive: distinct real, effective and saved uids and gids, supplementary groups,
# and no capabilities; checked after a restart and after a second cycle.
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"

chmod 777 $T
cr_start cr_target creds $T
tap_check "the target is ready" cr_ready
for n in 1 2; do
	tap_check "cycle $n: checkpoint, kill and restart with the same pid" cr_cycle $n
	tap_check "cycle $n: uids, gids, groups, and no way back to root" cr_round $n
	tap_check "cycle $n: /proc shows uid 1004 1005 1006" grep -qE "^Uid:\s+1004\s+1005\s+1006" /proc/$PID/status
	tap_check "cycle $n: no capabilities" grep -qE "^CapEff:\s+0+$" /proc/$PID/status
done
cr_cleanup
tap_finish
