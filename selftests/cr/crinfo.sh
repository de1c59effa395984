#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# crinfo decodes a valid image and rejects corrupt ones with a clear message, never a crash.
. "$(dirname "$0")/tap.sh.inc"
tap_plan 8
SAMPLE=/usr/lib/cr/data/sample.crimg
T=/tmp/crinfo.$$
mkdir -p $T

tap_check "crinfo accepts the sample image" crinfo $SAMPLE
tap_check "crinfo --json marks it valid" sh -c "crinfo --json $SAMPLE | grep -q '\"valid\": true'"
tap_check "crinfo reads standard input" sh -c "crinfo - < $SAMPLE"

size=$(wc -c <$SAMPLE)
bad=0
off=0
while [ $off -lt "$size" ]; do
	cp $SAMPLE $T/img
	# Flip one byte (XOR 0x5a) at $off.
	orig=$(dd if=$SAMPLE bs=1 skip=$off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf '%03o' $((orig ^ 90)))" | dd of=$T/img bs=1 seek=$off conv=notrunc 2>/dev/null
	crinfo $T/img >/dev/null 2>$T/err
	st=$?
	if [ $st -ne 1 ] || ! grep -q 'invalid image: offset [0-9]*: ' $T/err; then
		echo "# byte $off: exit $st: $(cat $T/err)"
		bad=$((bad + 1))
	fi
	off=$((off + 7))
done
tap_ok $bad "every corrupted copy (one byte flipped every 7 bytes) exits 1 with an offset and reason"

head -c $((size - 5)) $SAMPLE >$T/short
crinfo $T/short >/dev/null 2>$T/err
tap_ok $(($? != 1)) "a truncated image exits 1"
tap_check "a truncated image is reported as truncated" grep -q 'image is truncated' $T/err
echo "hello" >$T/text
crinfo $T/text >/dev/null 2>$T/err
tap_check "a text file is reported as not a cr image" grep -q 'not a cr image' $T/err
crinfo $T/missing >/dev/null 2>&1
tap_ok $(($? != 2)) "a missing file exits 2"
rm -rf $T
tap_finish
