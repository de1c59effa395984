#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Incremental images (ckpt --track, ckpt --parent): a checkpoint with --track leaves the tree's
# memory tracked in the module; a later one with --parent writes only the pages written since
# (KEEP records for the rest) and names its parent by the parent's trailer. Restart follows the
# chain, by the recorded paths or a --parent-dir, and refuses a parent that is missing or not
# the very image (one byte changed). Without tracking (a parent the module no longer tracks),
# the image is whole. A thawed checkpoint can be incremental too. Each restore is checked page
# by page by the writer itself (generations in every word, and its own table).
. "$(dirname "$0")/tap.sh.inc"
. "$(dirname "$0")/cr_lib.sh.inc"
tap_plan 24

MIB=$(scale 32 16)

# pages IMAGE KIND: the pages of IMAGE's KIND (PAGES or KEEP) records, summed.
pages() {
	crinfo "$1" | awk -v kind="$2" '$2 == kind {
		for (i = 1; i <= NF; i++) if ($i ~ /^pages=/) { sub("pages=", "", $i); n += $i } }
		END { print n + 0 }'
}

# take NAME FLAGS...: ckpt PID -o $T/NAME.img FLAGS, the log kept in $T/NAME.log.
take() {
	name=$1
	shift
	ckpt $PID -o $T/$name.img --log $T/$name.log "$@" || { cat $T/$name.log; return 1; }
	cr_dry_run $T/$name.img
}

# back NAME [RESTART FLAGS...]: waits for the killed PID to go, and restarts $T/NAME.img.
back() {
	name=$1
	shift
	cr_restart $T/$name.img $T/restart.$name.log cr_writer "$@" ||
		{ cat $T/restart.$name.log; return 1; }
}

cr_start cr_writer $T $MIB 1 1
tap_check "the writer rewrites $MIB MiB, a page a millisecond" cr_ready
tap_check "its memory checks out before any checkpoint" cr_round 1

tap_check "ckpt --track writes a whole image, and keeps the tracking" take a --track
tap_check "the writer runs on, its memory intact" cr_round 2
sleep 0.2
tap_check "ckpt --parent a.img writes an incremental image" take b --parent $T/a.img
a=$(pages $T/a.img PAGES)
b=$(pages $T/b.img PAGES)
kept=$(pages $T/b.img KEEP)
echo "# a.img: $a pages; b.img: $b pages written, $kept kept from a.img"
tap_check "b.img names a.img as its parent, and keeps most pages from it" sh -c "
	crinfo $T/b.img | grep -q 'PARENT .*path=$T/a.img' && [ $kept -gt 0 ] && [ $b -lt $((a / 2)) ]"
tap_check "crinfo --chain lists b.img, then a.img" sh -c "
	crinfo --chain $T/b.img >$T/chain && sed 's/^/# /' $T/chain &&
	grep -q '^image  $T/b.img: .*incremental' $T/chain &&
	grep -q '^parent $T/a.img: .*whole' $T/chain"

sleep 0.2
tap_check "ckpt --parent b.img --kill: a chain of three" take c --parent $T/b.img --kill
tap_check "restart -i c.img follows c, b, a" back c
tap_check "the restored memory is the memory at the freeze" cr_round 3

# The restored tree has new address spaces: nothing tracks them yet.
# whole NAME: the log says the parent is not tracked, and NAME.img has no PARENT nor KEEP.
whole() {
	grep -q 'not tracked' $T/$1.log && ! crinfo $T/$1.img | grep -q 'PARENT\|KEEP'
}
untracked() {
	take d --parent $T/c.img && whole d
}
tap_check "ckpt --parent of an image whose tracking is gone writes a whole image" untracked
sleep 0.2
tap_check "ckpt --parent d.img --kill" take e --parent $T/d.img --kill
tap_check "e.img names d.img as its parent, and keeps pages from it" sh -c "
	crinfo $T/e.img | grep -q 'PARENT .*path=$T/d.img' && [ $(pages $T/e.img KEEP) -gt 0 ] ||
		{ cat $T/e.log; crinfo $T/e.img | head -5; false; }"

# A parent with one byte changed is another image: refused, and nothing is started.
cp $T/d.img $T/d.good
cr_flip $T/d.img $(($(stat -c %s $T/d.img) / 2))
refused() {
	if [ -n "$RESTARTER" ]; then wait $RESTARTER 2>/dev/null; RESTARTER=; fi
	wait_for pid_gone $PID || return 1
	! restart -i $T/e.img --detach </dev/null >/dev/null 2>$T/refused.err &&
		sed 's/^/# /' $T/refused.err && grep -q 'd.img: invalid image: .*checksum mismatch' $T/refused.err &&
		pid_gone $PID
}
tap_check "restart refuses a parent that is not the image it was written against" refused

# Moved away from its recorded path: found in --parent-dir.
mkdir $T/elsewhere
mv $T/d.good $T/elsewhere/d.img
rm $T/d.img
missing() {
	! restart -i $T/e.img --detach </dev/null >/dev/null 2>$T/missing.err &&
		sed 's/^/# /' $T/missing.err && grep -q 'd.img: missing' $T/missing.err
}
tap_check "restart without the parent at its path fails" missing
tap_check "restart --parent-dir finds the parent" back e --parent-dir $T/elsewhere
tap_check "the restored memory is the memory at the freeze" cr_round 4

# Thawed and incremental: the rounds start from what the parent holds.
thawed_child() {
	take f --track && sleep 0.2 && take g --thawed --parent $T/f.img --kill
}
tap_check "ckpt --track, then ckpt --thawed --parent --kill" thawed_child
less_than_parent() {
	crinfo $T/g.img | grep -q "PARENT .*path=$T/f.img" &&
		[ "$(pages $T/g.img PRECOPY)" -lt "$(pages $T/f.img PAGES)" ]
}
tap_check "the thawed image names f.img, and its rounds copied less than f.img holds" \
	less_than_parent
tap_check "restart -i g.img" back g
tap_check "the restored memory is the memory at the freeze" cr_round 5

# What the module tracks goes with it: unloaded while it tracks a live address space, it
# leaks nothing (kmemleak, on the debug kernel), and once reloaded it tracks nothing.
tap_check "ckpt --track of the restored writer" take h --track
tap_check "cr unloads while it tracks the writer, and loads again" sh -c "
	rmmod cr && insmod /lib/modules/cr.ko && test -c /dev/cr"
reloaded() {
	take i --parent $T/h.img && whole i
}
tap_check "after the reload, ckpt --parent h.img writes a whole image" reloaded

cr_cleanup
tap_finish
