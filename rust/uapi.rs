// SPDX-License-Identifier: GPL-2.0

//! The `/dev/cr` ABI, mirrored from `include/uapi/linux/cr.h`.
//!
//! Shared by the module and the tools, so it is `core`-only like `format.rs`. The host tests
//! compile the C header and compare every number here against it.

/// `CR_IOC_MAGIC`.
pub const IOC_MAGIC: u32 = 0xC7;
/// `CR_ABI_VERSION`.
pub const ABI_VERSION: u32 = 1;
/// `CR_FEATURE_TREES`: process trees, threads, pipes and shared memory.
pub const FEATURE_TREES: u64 = 1 << 0;
/// `CR_FEATURE_CONTAINERS`: a pid namespace's init and its UTS names.
pub const FEATURE_CONTAINERS: u64 = 1 << 1;
/// `CR_FEATURE_THAWED`: thawed checkpoints (`CR_IOC_PRECOPY`, `CR_IOC_STAGE`).
pub const FEATURE_THAWED: u64 = 1 << 2;
/// `CR_FEATURE_INCREMENTAL`: incremental images (`CR_IOC_PARENT`, `CR_CHECKPOINT_TRACK`).
pub const FEATURE_INCREMENTAL: u64 = 1 << 3;
/// `CR_FEATURES_KNOWN`: the feature bits this version defines.
pub const FEATURES_KNOWN: u64 =
    FEATURE_TREES | FEATURE_CONTAINERS | FEATURE_THAWED | FEATURE_INCREMENTAL;

/// `CR_CHECKPOINT_ALLOW_LEAKS`: checkpoint even when a task outside the tree shares one of its
/// objects (a pipe end, shared memory, a descriptor table); restart then splits the sharing.
pub const CHECKPOINT_ALLOW_LEAKS: u64 = 1 << 0;
/// `CR_CHECKPOINT_STATS`: once the checkpoint succeeded, write a line of figures to logfd.
pub const CHECKPOINT_STATS: u64 = 1 << 1;
/// `CR_CHECKPOINT_AFTER_PRECOPY`: the frozen round of a thawed checkpoint, after
/// `CR_IOC_PRECOPY` on the same open `/dev/cr`.
pub const CHECKPOINT_AFTER_PRECOPY: u64 = 1 << 2;
/// `CR_CHECKPOINT_TRACK`: keep tracking the tree's memory, for a later incremental image.
pub const CHECKPOINT_TRACK: u64 = 1 << 3;
/// Checkpoint flags this version defines.
pub const CHECKPOINT_FLAGS_KNOWN: u64 =
    CHECKPOINT_ALLOW_LEAKS | CHECKPOINT_STATS | CHECKPOINT_AFTER_PRECOPY | CHECKPOINT_TRACK;
/// `CR_PRECOPY_STATS`: once done, write a line of figures to logfd.
pub const PRECOPY_STATS: u64 = 1 << 0;
/// Precopy flags this version defines.
pub const PRECOPY_FLAGS_KNOWN: u64 = PRECOPY_STATS;
/// Rounds of a precopy when the caller gives 0.
pub const PRECOPY_ROUNDS_DEFAULT: u32 = 8;
/// `CR_RESTART_STATS`: once the restart succeeded, the last task writes a line of figures to
/// its logfd.
pub const RESTART_STATS: u64 = 1 << 1;
/// Restart flags this version defines.
pub const RESTART_FLAGS_KNOWN: u64 = RESTART_DRY_RUN | RESTART_STATS;
/// The line both write: `cr: stats: tasks=N pages=N bytes=N ns=N`.
pub const STATS_PREFIX: &str = "cr: stats: ";

/// The figures of a stats line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live tasks written or restored.
    pub tasks: u64,
    /// Pages of memory.
    pub pages: u64,
    /// Image bytes.
    pub bytes: u64,
    /// Nanoseconds.
    pub ns: u64,
}

impl Stats {
    /// Parses a stats line (with or without its newline); `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim_end().strip_prefix(STATS_PREFIX)?;
        let mut s = Self::default();
        for field in rest.split(' ') {
            let (k, v) = field.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "tasks" => s.tasks = v,
                "pages" => s.pages = v,
                "bytes" => s.bytes = v,
                "ns" => s.ns = v,
                _ => {}
            }
        }
        Some(s)
    }
}

impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{STATS_PREFIX}tasks={} pages={} bytes={} ns={}",
            self.tasks, self.pages, self.bytes, self.ns
        )
    }
}
/// `CR_RESTART_DRY_RUN`: the caller alone reads and checks the whole image, restoring nothing.
pub const RESTART_DRY_RUN: u64 = 1 << 0;
/// `CR_RESTART_ZOMBIE`: CR_IOC_RESTART returns this, ORed with the wait status, to a task that
/// was a zombie: it must now exit with that status.
pub const RESTART_ZOMBIE: isize = 1 << 16;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
/// `_IOC_WRITE`: userspace writes, the kernel reads.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the kernel writes, userspace reads.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` for the asm-generic layout that x86 uses.
pub const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | (IOC_MAGIC << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// The parts of an ioctl command number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IocParts {
    /// `_IOC_DIR`.
    pub dir: u32,
    /// `_IOC_TYPE`.
    pub magic: u32,
    /// `_IOC_NR`.
    pub nr: u32,
    /// `_IOC_SIZE`: the argument size the caller was compiled with.
    pub size: usize,
}

impl IocParts {
    /// Splits `cmd`.
    pub const fn split(cmd: u32) -> Self {
        Self {
            dir: cmd >> IOC_DIRSHIFT,
            magic: (cmd >> IOC_TYPESHIFT) & ((1 << IOC_TYPEBITS) - 1),
            nr: (cmd >> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1),
            size: ((cmd >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)) as usize,
        }
    }
}

/// `_IOC_NR` of `CR_IOC_VERSION`.
pub const NR_VERSION: u32 = 0x00;

/// `struct cr_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Version {
    /// `CR_ABI_VERSION`.
    pub abi_version: u32,
    /// Image format version written.
    pub image_version: u32,
    /// Oldest image format version accepted.
    pub image_version_min: u32,
    /// `CR_ARCH_*`.
    pub arch: u32,
    /// `CR_FEATURE_*`.
    pub features: u64,
}

impl Version {
    /// Size of the first version of the struct; smaller arguments get EINVAL.
    pub const SIZE_V1: usize = 24;

    /// Little-endian wire form, as the C struct lays it out on x86_64.
    pub fn to_bytes(self) -> [u8; Self::SIZE_V1] {
        let mut b = [0u8; Self::SIZE_V1];
        b[0..4].copy_from_slice(&self.abi_version.to_le_bytes());
        b[4..8].copy_from_slice(&self.image_version.to_le_bytes());
        b[8..12].copy_from_slice(&self.image_version_min.to_le_bytes());
        b[12..16].copy_from_slice(&self.arch.to_le_bytes());
        b[16..24].copy_from_slice(&self.features.to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: &[u8; Self::SIZE_V1]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut f = [0u8; 8];
        f.copy_from_slice(&b[16..24]);
        Self {
            abi_version: u32_at(0),
            image_version: u32_at(4),
            image_version_min: u32_at(8),
            arch: u32_at(12),
            features: u64::from_le_bytes(f),
        }
    }
}

/// `CR_IOC_VERSION`.
pub const IOC_VERSION: u32 = ioc(IOC_READ, NR_VERSION, Version::SIZE_V1);

/// Largest argument struct the module accepts, whatever its version.
pub const MAX_ARG_SIZE: usize = 4096;

/// How an ioctl's encoded size relates to the struct the module knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSize {
    /// Too small or too large: EINVAL.
    Invalid,
    /// Usable; copy `min(size, known)` bytes, and for input check that any longer tail is zero.
    Usable(usize),
}

/// Classifies `size` for a struct whose first version is `v1` bytes.
pub const fn classify_arg_size(size: usize, v1: usize) -> ArgSize {
    if size < v1 || size > MAX_ARG_SIZE {
        ArgSize::Invalid
    } else {
        ArgSize::Usable(size)
    }
}

/// `_IOC_NR` of `CR_IOC_CHECKPOINT`.
pub const NR_CHECKPOINT: u32 = 0x01;
/// `_IOC_NR` of `CR_IOC_RESTART`.
pub const NR_RESTART: u32 = 0x02;
/// `_IOC_NR` of `CR_IOC_PROGRESS`.
pub const NR_PROGRESS: u32 = 0x03;

/// `struct cr_progress`: how far the caller's checkpoint has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Progress {
    /// Image bytes written so far.
    pub done: u64,
    /// About how many there will be; 0 while unknown.
    pub total: u64,
}

impl Progress {
    /// Size of the first version of the struct.
    pub const SIZE_V1: usize = 16;

    /// Little-endian wire form.
    pub fn to_bytes(self) -> [u8; Self::SIZE_V1] {
        let mut b = [0u8; Self::SIZE_V1];
        b[0..8].copy_from_slice(&self.done.to_le_bytes());
        b[8..16].copy_from_slice(&self.total.to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: &[u8; Self::SIZE_V1]) -> Self {
        let mut d = [0u8; 8];
        let mut t = [0u8; 8];
        d.copy_from_slice(&b[0..8]);
        t.copy_from_slice(&b[8..16]);
        Self {
            done: u64::from_le_bytes(d),
            total: u64::from_le_bytes(t),
        }
    }
}

/// `CR_IOC_PROGRESS`.
pub const IOC_PROGRESS: u32 = ioc(IOC_READ, NR_PROGRESS, Progress::SIZE_V1);

/// `struct cr_checkpoint_args` and `struct cr_restart_args`, which share one layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct OpArgs {
    /// Target pid (checkpoint) or 0 / own pid (restart).
    pub pid: i32,
    /// Image descriptor.
    pub fd: i32,
    /// Log descriptor, or -1.
    pub logfd: i32,
    /// Must be zero.
    pub reserved: u32,
    /// `CR_CHECKPOINT_*` or `CR_RESTART_*` flags.
    pub flags: u64,
}

impl OpArgs {
    /// Size of the first version.
    pub const SIZE_V1: usize = 24;

    /// Wire form.
    pub fn to_bytes(self) -> [u8; Self::SIZE_V1] {
        let mut b = [0u8; Self::SIZE_V1];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.fd.to_le_bytes());
        b[8..12].copy_from_slice(&self.logfd.to_le_bytes());
        b[12..16].copy_from_slice(&self.reserved.to_le_bytes());
        b[16..24].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: &[u8; Self::SIZE_V1]) -> Self {
        let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut f = [0u8; 8];
        f.copy_from_slice(&b[16..24]);
        Self {
            pid: i32_at(0),
            fd: i32_at(4),
            logfd: i32_at(8),
            reserved: i32_at(12) as u32,
            flags: u64::from_le_bytes(f),
        }
    }
}

/// `CR_IOC_CHECKPOINT`.
pub const IOC_CHECKPOINT: u32 = ioc(IOC_WRITE, NR_CHECKPOINT, OpArgs::SIZE_V1);
/// `CR_IOC_RESTART`.
pub const IOC_RESTART: u32 = ioc(IOC_WRITE, NR_RESTART, OpArgs::SIZE_V1);

/// `_IOC_NR` of `CR_IOC_PRECOPY`.
pub const NR_PRECOPY: u32 = 0x04;
/// `_IOC_NR` of `CR_IOC_STAGE`.
pub const NR_STAGE: u32 = 0x05;

/// `struct cr_precopy_args`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PrecopyArgs {
    /// Root of the tree.
    pub pid: i32,
    /// Image descriptor.
    pub fd: i32,
    /// Log descriptor, or -1.
    pub logfd: i32,
    /// Most rounds; 0 for [`PRECOPY_ROUNDS_DEFAULT`].
    pub max_rounds: u32,
    /// `CR_PRECOPY_*` flags.
    pub flags: u64,
    /// How long the frozen round may take to copy what the last round found written.
    pub max_downtime_ns: u64,
}

impl PrecopyArgs {
    /// Size of the first version.
    pub const SIZE_V1: usize = 32;

    /// Wire form.
    pub fn to_bytes(self) -> [u8; Self::SIZE_V1] {
        let mut b = [0u8; Self::SIZE_V1];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.fd.to_le_bytes());
        b[8..12].copy_from_slice(&self.logfd.to_le_bytes());
        b[12..16].copy_from_slice(&self.max_rounds.to_le_bytes());
        b[16..24].copy_from_slice(&self.flags.to_le_bytes());
        b[24..32].copy_from_slice(&self.max_downtime_ns.to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: &[u8; Self::SIZE_V1]) -> Self {
        let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Self {
            pid: i32_at(0),
            fd: i32_at(4),
            logfd: i32_at(8),
            max_rounds: i32_at(12) as u32,
            flags: u64_at(16),
            max_downtime_ns: u64_at(24),
        }
    }
}

/// `CR_IOC_PRECOPY`.
pub const IOC_PRECOPY: u32 = ioc(IOC_WRITE, NR_PRECOPY, PrecopyArgs::SIZE_V1);

/// `struct cr_stage_args`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct StageArgs {
    /// The staged pages, by address.
    pub fd: i32,
    /// Must be zero.
    pub reserved: u32,
    /// The address space's id in the PRECOPY records.
    pub mm: u64,
}

impl StageArgs {
    /// Size of the first version.
    pub const SIZE_V1: usize = 16;

    /// Wire form.
    pub fn to_bytes(self) -> [u8; Self::SIZE_V1] {
        let mut b = [0u8; Self::SIZE_V1];
        b[0..4].copy_from_slice(&self.fd.to_le_bytes());
        b[4..8].copy_from_slice(&self.reserved.to_le_bytes());
        b[8..16].copy_from_slice(&self.mm.to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: &[u8; Self::SIZE_V1]) -> Self {
        let mut m = [0u8; 8];
        m.copy_from_slice(&b[8..16]);
        Self {
            fd: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            reserved: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            mm: u64::from_le_bytes(m),
        }
    }
}

/// `CR_IOC_STAGE`.
pub const IOC_STAGE: u32 = ioc(IOC_WRITE, NR_STAGE, StageArgs::SIZE_V1);

/// `_IOC_NR` of `CR_IOC_PARENT`.
pub const NR_PARENT: u32 = 0x06;

/// `struct cr_parent_args`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ParentArgs {
    /// The parent's length before its trailer.
    pub length: u64,
    /// The parent's trailer checksum.
    pub checksum: u64,
    /// User pointer to its path, or 0.
    pub path: u64,
    /// Bytes at `path`.
    pub path_len: u32,
    /// Must be zero.
    pub reserved: u32,
}

impl ParentArgs {
    /// Size of the first version.
    pub const SIZE_V1: usize = 32;

    /// Wire form.
    pub fn to_bytes(self) -> [u8; Self::SIZE_V1] {
        let mut b = [0u8; Self::SIZE_V1];
        b[0..8].copy_from_slice(&self.length.to_le_bytes());
        b[8..16].copy_from_slice(&self.checksum.to_le_bytes());
        b[16..24].copy_from_slice(&self.path.to_le_bytes());
        b[24..28].copy_from_slice(&self.path_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.reserved.to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: &[u8; Self::SIZE_V1]) -> Self {
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Self {
            length: u64_at(0),
            checksum: u64_at(8),
            path: u64_at(16),
            path_len: u32_at(24),
            reserved: u32_at(28),
        }
    }
}

/// `CR_IOC_PARENT`.
pub const IOC_PARENT: u32 = ioc(IOC_WRITE, NR_PARENT, ParentArgs::SIZE_V1);

/// The line a precopy writes with [`PRECOPY_STATS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrecopyStats {
    /// Rounds made.
    pub rounds: u32,
    /// Pages copied in all rounds.
    pub pages: u64,
    /// Image bytes.
    pub bytes: u64,
    /// Pages the last round found written.
    pub last: u64,
    /// Nanoseconds.
    pub ns: u64,
}

/// The start of that line.
pub const PRECOPY_STATS_PREFIX: &str = "cr: precopy: ";

impl core::fmt::Display for PrecopyStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{PRECOPY_STATS_PREFIX}rounds={} pages={} bytes={} last={} ns={}",
            self.rounds, self.pages, self.bytes, self.last, self.ns
        )
    }
}
