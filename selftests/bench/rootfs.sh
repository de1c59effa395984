#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The bench guest's root file system: Debian trixie (minbase) with criu, under $CR_CACHE, made
# once and reused while this script and its package list stay the same. Prints its path.
#
# debootstrap mounts nothing itself here (minbase, --variant without a chroot'ed configure step
# that needs /proc), and the packages' maintainer scripts run in a private mount namespace, so
# nothing stays mounted when this fails.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
MIRROR=${CR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# criu, and what the guest's init and the scenarios use.
PACKAGES=criu,kmod,busybox,iproute2,procps
ROOT=$CR_CACHE/bench-root
key=$( (echo "$MIRROR $PACKAGES"; cat "$0") | sha256sum | cut -c1-16)

log() { echo "bench: $*" >&2; }

if [[ -f $ROOT/.cr-stamp && $(cat "$ROOT/.cr-stamp") == "$key" ]]; then
	echo "$ROOT"
	exit 0
fi
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
log "bootstrapping Debian trixie with criu into $ROOT (about a minute)"
rm -rf "$ROOT" "$ROOT.partial"
mkdir -p "$CR_CACHE"
unshare --mount --propagation private -- \
	debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOT.partial" "$MIRROR" \
	>"$CR_CACHE/bench-debootstrap.log" 2>&1 ||
	{ tail -20 "$CR_CACHE/bench-debootstrap.log" >&2; exit 1; }
# Nothing of the host's may be left mounted inside.
if grep -q " $ROOT.partial" /proc/mounts; then
	log "debootstrap left mounts under $ROOT.partial"
	exit 1
fi
rm -rf "$ROOT.partial"/var/cache/apt/archives/*.deb
mv "$ROOT.partial" "$ROOT"
echo "$key" >"$ROOT/.cr-stamp"
echo "$ROOT"
