#!/usr/bin/env bash
# Builds the cr test kernel: `kernel/build.sh normal|debug|bench` (bench: the normal kernel plus
# ACPI for a second vCPU and what criu needs, for `make bench` only); `kernel/build.sh prepare`
# only makes the toolchain and the patched source, which the variants then share (`make check`
# builds normal and debug side by side).
#
# The source is Debian's linux-source-7.3 (pinned to 7.3.4), unpacked under $CR_CACHE with
# kernel/patches/*.patch applied; each variant builds out of tree in $CR_CACHE/build/<variant>.
# A stamp over the version, patches and config fragments makes a warm rebuild a no-op.
# With KSRC=/path, that tree (already configured and built by the user) is used as is.
set -euo pipefail

VARIANT=${1:-normal}
TOP=$(cd "$(dirname "$0")/.." && pwd)
CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
PIN=7.3.4
TC="$TOP/kernel/toolchain.sh"
JOBS=${JOBS:-$(nproc)}

log() { echo "kernel: $*" >&2; }

case $VARIANT in
prepare) FRAGMENTS=() ;;
normal) FRAGMENTS=("$TOP/kernel/cr.config") ;;
debug) FRAGMENTS=("$TOP/kernel/cr.config" "$TOP/kernel/debug.config") ;;
bench) FRAGMENTS=("$TOP/kernel/cr.config" "$TOP/kernel/bench.config") ;;
*) log "unknown variant '$VARIANT' (normal, debug or bench)"; exit 2 ;;
esac

if [[ -n ${KSRC:-} ]]; then
	[[ -f $KSRC/arch/x86/boot/bzImage && -f $KSRC/.config ]] ||
		{ log "KSRC=$KSRC has no built kernel (.config and arch/x86/boot/bzImage)"; exit 1; }
	grep -q '^CONFIG_RUST=y' "$KSRC/.config" || { log "KSRC=$KSRC is not built with CONFIG_RUST=y"; exit 1; }
	echo "$KSRC"
	exit 0
fi

"$TC" ensure

# Selects the pinned linux-source version, or the newest 7.3.x with a warning.
installed=$("$TC" run dpkg-query -W -f='${Version}' linux-source-7.3)
if [[ $installed != "$PIN"* ]]; then
	pinned=$("$TC" run sh -c "apt-cache madison linux-source-7.3 | awk '{print \$3}' | grep '^$PIN' | head -1" || true)
	if [[ -n $pinned ]]; then
		"$TC" run apt-get -qq install -y --allow-downgrades "linux-source-7.3=$pinned" >/dev/null
		installed=$pinned
	else
		log "WARNING: linux-source $PIN is gone from the archive; using $installed"
	fi
fi
upstream=${installed%%-*}
upstream=${upstream%%+*}

patches=("$TOP"/kernel/patches/*.patch)
[[ -e ${patches[0]} ]] || patches=()
src_key=$( (echo "$installed"; cat "${patches[@]}" /dev/null) | sha256sum | cut -c1-12)
SRC="$CR_CACHE/src/linux-$upstream-$src_key"
if [[ ! -f $SRC/.cr-ready ]]; then
	log "unpacking linux $installed into $SRC"
	rm -rf "$SRC"
	mkdir -p "$SRC"
	tar -C "$SRC" --strip-components=1 -xf "$CR_CACHE/toolchain/usr/src/linux-source-7.3.tar.xz"
	for p in "${patches[@]}"; do
		log "applying $(basename "$p")"
		patch -d "$SRC" -p1 -s --no-backup-if-mismatch <"$p"
	done
	touch "$SRC/.cr-ready"
	# Older unpacked trees are dead weight once the patch set changes.
	find "$CR_CACHE/src" -mindepth 1 -maxdepth 1 -type d ! -path "$SRC" -exec rm -rf {} +
fi
if [[ $VARIANT == prepare ]]; then
	echo "$SRC"
	exit 0
fi

OUT="$CR_CACHE/build/$VARIANT"
# The inputs of a build: the source (version and patches, in $SRC's name), the fragments, and
# the recipe below, whose version is bumped whenever it changes what gets built.
RECIPE=1
build_key=$( (echo "$SRC recipe $RECIPE"; cat "${FRAGMENTS[@]}") | sha256sum | cut -c1-16)
if [[ -f $OUT/.cr-stamp && $(cat "$OUT/.cr-stamp") == "$build_key" && -f $OUT/arch/x86/boot/bzImage ]]; then
	echo "$OUT"
	exit 0
fi

mkdir -p "$OUT"
# Two builds of one variant at once (a second make in another shell) would write the same
# objects: the second waits, then finds the first one's stamp.
exec 9>"$OUT/.cr-lock"
flock 9
if [[ -f $OUT/.cr-stamp && $(cat "$OUT/.cr-stamp") == "$build_key" && -f $OUT/arch/x86/boot/bzImage ]]; then
	echo "$OUT"
	exit 0
fi
rm -f "$OUT/.cr-stamp"
log "configuring $VARIANT kernel in $OUT"
kmake() { "$TC" run make -s -C "$SRC" O="$OUT" ARCH=x86_64 LLVM=-19 "$@"; }
kmake tinyconfig >/dev/null
"$TC" run sh -c "cd '$OUT' && '$SRC/scripts/kconfig/merge_config.sh' -m -O '$OUT' .config ${FRAGMENTS[*]}" >/dev/null
kmake olddefconfig >/dev/null

# A fragment line that Kconfig dropped (an unmet dependency, a toolchain check that failed) would
# give a kernel that silently lacks what the tests rely on: refuse it.
# A later fragment overrides an earlier one (bench.config turns IPv6 and ACPI back on), as in
# merge_config.sh: each symbol is checked against the last line that sets it.
declare -A wanted=()
for f in "${FRAGMENTS[@]}"; do
	while IFS= read -r line; do
		[[ $line == CONFIG_*=* ]] && wanted[${line%%=*}]=$line
	done <"$f"
done
missing=0
for line in "${wanted[@]}"; do
	case $line in
	CONFIG_*=n) grep -qE "^${line%=n}=(y|m)$" "$OUT/.config" && { log "config: $line was not applied"; missing=1; } ;;
	*) grep -qx "$line" "$OUT/.config" || { log "config: $line was not applied"; missing=1; } ;;
	esac
done
if ((missing)); then
	"$TC" run sh -c "cd '$SRC' && make -s O='$OUT' LLVM=-19 rustavailable" >&2 || true
	exit 1
fi

log "building $VARIANT kernel (about 9 minutes on 2 cores)"
kmake -j"$JOBS" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" >&2; exit 1; }
echo "$build_key" >"$OUT/.cr-stamp"
echo "$OUT"
