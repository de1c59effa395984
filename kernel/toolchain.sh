#!/usr/bin/env bash
# Creates (or reuses) the Debian trixie chroot that holds the kernel toolchain, and runs commands
# inside it.
#
#   kernel/toolchain.sh ensure          create the chroot if it is missing or its package set changed
#   kernel/toolchain.sh run CMD ARGS    run CMD in the chroot, with the work tree and the cache
#                                       visible at their host paths
#
# Everything the chroot mounts lives in a private mount namespace (unshare -m), so the mounts vanish
# with the process even when a build fails or is killed; the trap is a second line of defence.
set -euo pipefail

CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
ROOT="$CR_CACHE/toolchain"
MIRROR=${CR_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The measured package set (see DEVELOPERS.md). Changing it rebuilds the chroot's package layer.
TRIXIE_PKGS="bindgen clang-19 lld-19 llvm-19 libclang-19-dev make flex bison bc libelf-dev libssl-dev
cpio kmod python3 dwarves xz-utils ca-certificates"
BACKPORTS_PKGS="rustc rust-src rustfmt rust-clippy linux-source-7.3"

stamp_value() { printf '%s\n%s\n%s\n' "$MIRROR" "$TRIXIE_PKGS" "$BACKPORTS_PKGS" | sha256sum | cut -c1-16; }

log() { echo "toolchain: $*" >&2; }

ensure() {
	local stamp="$ROOT/.cr-stamp" want
	want=$(stamp_value)
	if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		return 0
	fi
	if [[ ! -x $ROOT/usr/bin/apt-get ]]; then
		command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
		log "bootstrapping Debian trixie into $ROOT"
		rm -rf "$ROOT.partial"
		mkdir -p "$CR_CACHE"
		debootstrap --variant=minbase trixie "$ROOT.partial" "$MIRROR" >"$CR_CACHE/debootstrap.log" 2>&1 ||
			{ tail -20 "$CR_CACHE/debootstrap.log" >&2; exit 1; }
		mv "$ROOT.partial" "$ROOT"
	fi
	cat >"$ROOT/etc/apt/sources.list" <<EOS
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
deb $MIRROR trixie-backports main
EOS
	log "installing the kernel toolchain"
	run_in sh -c "export DEBIAN_FRONTEND=noninteractive;
		apt-get -qq update &&
		apt-get -qq install -y --no-install-recommends $(echo $TRIXIE_PKGS) &&
		apt-get -qq install -y --no-install-recommends -t trixie-backports $(echo $BACKPORTS_PKGS)" \
		>"$CR_CACHE/apt.log" 2>&1 || { tail -30 "$CR_CACHE/apt.log" >&2; exit 1; }
	echo "$want" >"$stamp"
}

# Runs "$@" inside the chroot in a private mount namespace.
run_in() {
	local top
	top=$(cd "$(dirname "$0")/.." && pwd)
	unshare --mount --propagation private -- "$0" __inside "$top" "$PWD" "$@"
}

inside() {
	MOUNT_TOP=$1
	local top=$1 cwd=$2
	shift 2
	cleanup() {
		for m in "$ROOT${KSRC:-/nonexistent}" "$ROOT$MOUNT_TOP" "$ROOT$CR_CACHE" "$ROOT/proc" "$ROOT/dev"; do
			mountpoint -q "$m" 2>/dev/null && umount -l "$m"
		done
		return 0
	}
	trap cleanup EXIT
	mount -t proc proc "$ROOT/proc"
	mount --rbind /dev "$ROOT/dev"
	mkdir -p "$ROOT$CR_CACHE" "$ROOT$top"
	mount --bind "$CR_CACHE" "$ROOT$CR_CACHE"
	mount --bind "$top" "$ROOT$top"
	# A user's own kernel tree (KSRC), visible at the path they gave.
	if [[ -n ${KSRC:-} && -d $KSRC ]]; then
		mkdir -p "$ROOT$KSRC"
		mount --bind "$(readlink -f "$KSRC")" "$ROOT$KSRC"
	fi
	cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
	chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		TERM="${TERM:-dumb}" sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
}

case "${1:-}" in
ensure) ensure ;;
run) shift; ensure; run_in "$@" ;;
__inside) shift; inside "$@" ;;
*) echo "usage: $0 ensure | run CMD [ARGS...]" >&2; exit 2 ;;
esac
