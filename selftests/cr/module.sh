#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# cr.ko loads and unloads cleanly, and /dev/cr follows it.
. "$(dirname "$0")/tap.sh.inc"
tap_plan 13
KO=/lib/modules/cr.ko

tap_check "cr is loaded at start" grep -q '^cr ' /proc/modules
tap_check "/dev/cr exists" test -c /dev/cr
tap_check "rmmod cr" rmmod cr
tap_check "cr is gone from /proc/modules" sh -c '! grep -q "^cr " /proc/modules'
tap_check "/dev/cr is gone" sh -c '! test -e /dev/cr'
tap_check "insmod cr.ko again" insmod $KO
tap_check "/dev/cr is back" test -c /dev/cr
tap_check "/dev/cr is a misc device (major 10)" sh -c 'ls -l /dev/cr | grep -q " 10, "'
tap_check "a second insmod is refused" sh -c "! insmod $KO"
# An open file pins the module: rmmod must refuse rather than pull the code from under it.
exec 3</dev/cr
tap_check "rmmod while /dev/cr is open is refused" sh -c '! rmmod cr'
exec 3<&-
tap_check "rmmod after close succeeds" rmmod cr
for i in 1 2 3 4 5; do insmod $KO && rmmod cr || break; done
tap_check "five more load/unload cycles" test "$i" = 5
tap_check "final insmod" insmod $KO
tap_finish
