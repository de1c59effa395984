// SPDX-License-Identifier: GPL-2.0

//! The cr image format.
//!
//! This file is shared, unchanged, by the kernel module (`mod format;`) and by the userspace tools
//! (`#[path]`), so it depends on `core` only: no allocation, no kernel API, no `std`.
//!
//! An image is a byte stream that is written and read strictly sequentially, so it can travel
//! through a pipe or a socket:
//!
//! ```text
//! MAGIC (8 bytes)
//! record: HEADER
//! record: ...            any number of state records, each 8-byte aligned
//! record: TRAILER        record count, stream length and CRC32C of everything before it
//! ```
//!
//! Every record starts with [`RecordHeader`] `{ kind: u32, len: u32 }`, little endian. `len`
//! counts the 8-byte header and the payload but not the zero padding that aligns the next record
//! to 8 bytes, so a reader can skip a record it does not know. Kinds with [`KIND_OPTIONAL`] set
//! may be skipped by a restart that does not understand them; any other unknown kind is an error.
//!
//! Shared kernel objects are numbered with objrefs: the first record that describes an object
//! gives it the next free id (1, 2, 3, ... in stream order) and later records refer to it by that
//! id. Because ids are dense and increasing, a reader validates them in O(1) memory, see
//! [`ObjrefSpace`].

use core::fmt;

/// First eight bytes of every image. The high byte and the CR LF catch text-mode mangling.
pub const MAGIC: [u8; 8] = *b"\x89CRIMG\r\n";

/// The format version this code writes.
pub const FORMAT_VERSION: u32 = 9;
/// The oldest format version this code reads.
pub const FORMAT_VERSION_MIN: u32 = 4;

/// Records are aligned to this many bytes.
pub const RECORD_ALIGN: usize = 8;
/// Size of [`RecordHeader`] on the wire.
pub const RECORD_HEADER_LEN: usize = 8;
/// Upper bound on one record, header included. It bounds what a reader must buffer.
pub const MAX_RECORD_LEN: u32 = 16 << 20;

/// Set on kinds that a reader may skip when it does not know them.
pub const KIND_OPTIONAL: u32 = 1 << 31;

/// Architecture identifiers, as stored in [`Header::arch`] and reported by `CR_IOC_VERSION`.
pub const ARCH_X86_64: u32 = 1;

/// Length of the kernel release field (`__NEW_UTS_LEN + 1`).
pub const RELEASE_LEN: usize = 65;

/// The record kinds defined by this version of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RecordKind {
    /// Image header, always the first record: [`Header`].
    Header = 1,
    /// Always the last record: [`Trailer`].
    Trailer = 2,
    /// Checkpoint failed after it had started writing: the payload is the reason, as UTF-8.
    /// An image that holds one is incomplete and restart refuses it.
    Error = 3,
    /// The image this one is incremental to: [`ParentRecord`], then its path. Right after the
    /// header, in an image whose KEEP records (and in a precopy image, whose address spaces)
    /// start from the parent's memory.
    Parent = 4,
    /// The process tree: [`TreeHeader`] and one [`TreeEntry`] per task. Written right after the
    /// header (and the parent), so that userspace `restart` can create the tasks before the kernel reads on.
    Tree = 10,
    /// The container's UTS names: [`UtsRecord`], then the node name and the domain name.
    /// Present only in a container image ([`tree_flags::CONTAINER`]), right after the TREE.
    Uts = 11,
    /// Per-task scalars: [`TaskRecord`] then the 16-byte comm.
    Task = 20,
    /// Credentials: [`CredsRecord`] then `ngroups` u32 group ids.
    Creds = 21,
    /// Resource limits: [`RLIMIT_COUNT`] pairs of u64 (cur, max).
    Rlimits = 22,
    /// Signal handlers: [`SIGNAL_COUNT`] [`SigAction`]s, for signals 1..=64.
    Sighand = 23,
    /// Pending signals of one queue: [`PendingHeader`] then [`PendingSignal`]s.
    SigPending = 24,
    /// Interval timers: [`ItimersRecord`].
    Itimers = 25,
    /// Root, cwd and umask: [`FsRecord`] then the two paths.
    Fs = 26,
    /// One open file descriptor: [`FileRecord`] then its path.
    File = 40,
    /// A pipe, defined before the first FILE that refers to it: [`PipeRecord`], then the bytes
    /// it had buffered, then its buffers' lengths when one of them is a packet.
    Pipe = 41,
    /// An event file (eventfd, timerfd, signalfd), defined before the FILE that opens it:
    /// [`EventRecord`].
    Event = 42,
    /// The interest list of an epoll file, after the FILE records of the descriptor table
    /// that defines the epoll's open file: [`EpollHeader`], then `count` [`EpollWatch`]es.
    Epoll = 43,
    /// A file lock, after the FILE records of the descriptor table whose open file holds it
    /// (flock, OFD) or which holds it itself (POSIX): [`LockRecord`].
    Lock = 44,
    /// Address-space layout: [`MmRecord`], then `auxv_words` u64s, then the exe path.
    Mm = 30,
    /// One memory area: [`VmaRecord`] then, for a file mapping, its path.
    Vma = 31,
    /// Page contents of the preceding VMA: [`PagesHeader`], `count` u64 addresses, then
    /// `count` pages. After a SHMEM record the addresses are offsets into that object.
    Pages = 32,
    /// A shared-memory object (MAP_SHARED anonymous, shmem or memfd), defined before the first
    /// VMA or FILE that refers to it: [`ShmemRecord`] then its name; PAGES records follow.
    Shmem = 33,
    /// Pages of one address space, copied while its tasks ran; only in a precopy image
    /// ([`header_flags::PRECOPY`]): [`PrecopyHeader`], then a PAGES payload. A later record
    /// for an address replaces an earlier one.
    Precopy = 34,
    /// Pages of the preceding VMA whose contents are unchanged since an earlier copy, which
    /// another image holds: [`KeepHeader`], then `count` runs of u64 pairs (first address,
    /// pages), in increasing order. The copy of address space `mm` is, at each address, what
    /// the precopy image before this one last gave for it, or else what the parent image
    /// restores there in its address space whose MM has objref `mm` (see [`FRESH_SPACE`]).
    Keep = 35,
    /// General registers and syscall-restart state: [`RegsRecord`].
    Regs = 50,
    /// The XSAVE area in the kernel's UABI layout, `Header::xstate_size` bytes.
    Xstate = 51,
}

impl RecordKind {
    /// Maps a wire value to a known kind.
    pub fn from_u32(kind: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| *k as u32 == kind)
    }

    /// Every kind this version defines.
    pub const ALL: [RecordKind; 26] = [
        Self::Header,
        Self::Trailer,
        Self::Error,
        Self::Parent,
        Self::Tree,
        Self::Uts,
        Self::Pipe,
        Self::Event,
        Self::Epoll,
        Self::Lock,
        Self::Shmem,
        Self::Task,
        Self::Creds,
        Self::Rlimits,
        Self::Sighand,
        Self::SigPending,
        Self::Itimers,
        Self::Fs,
        Self::File,
        Self::Mm,
        Self::Vma,
        Self::Pages,
        Self::Precopy,
        Self::Keep,
        Self::Regs,
        Self::Xstate,
    ];

    /// Name used by `crinfo` and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Header => "HEADER",
            Self::Trailer => "TRAILER",
            Self::Error => "ERROR",
            Self::Parent => "PARENT",
            Self::Tree => "TREE",
            Self::Uts => "UTS",
            Self::Pipe => "PIPE",
            Self::Event => "EVENT",
            Self::Epoll => "EPOLL",
            Self::Lock => "LOCK",
            Self::Shmem => "SHMEM",
            Self::Task => "TASK",
            Self::Creds => "CREDS",
            Self::Rlimits => "RLIMITS",
            Self::Sighand => "SIGHAND",
            Self::SigPending => "SIGPENDING",
            Self::Itimers => "ITIMERS",
            Self::Fs => "FS",
            Self::File => "FILE",
            Self::Mm => "MM",
            Self::Vma => "VMA",
            Self::Pages => "PAGES",
            Self::Precopy => "PRECOPY",
            Self::Keep => "KEEP",
            Self::Regs => "REGS",
            Self::Xstate => "XSTATE",
        }
    }
}

/// Why a stream was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The stream ended inside the magic, a record, or before the trailer.
    Truncated,
    /// The first eight bytes are not [`MAGIC`].
    BadMagic,
    /// The header names a format version outside `FORMAT_VERSION_MIN..=FORMAT_VERSION`.
    UnsupportedVersion(u32),
    /// The header names an architecture this code does not know.
    UnsupportedArch(u32),
    /// The header sets flags this version does not define.
    UnknownHeaderFlags(u32),
    /// A record length is below the header size or above [`MAX_RECORD_LEN`].
    BadRecordLength(u32),
    /// A record's payload has the wrong size for its kind.
    BadPayloadLength {
        /// Record kind.
        kind: u32,
        /// Payload length found.
        len: u32,
    },
    /// The first record is not a header.
    MissingHeader,
    /// A header record after the first record.
    DuplicateHeader,
    /// A non-optional record kind that this version does not define.
    UnknownKind(u32),
    /// Padding after a record is not zero.
    NonZeroPadding,
    /// A string field is not NUL-terminated, or holds invalid UTF-8.
    BadString,
    /// The trailer's record count disagrees with the stream.
    RecordCountMismatch {
        /// Count in the trailer.
        expected: u32,
        /// Records actually seen.
        actual: u32,
    },
    /// The trailer's stream length disagrees with the stream.
    StreamLengthMismatch {
        /// Length in the trailer.
        expected: u64,
        /// Bytes actually seen before the trailer.
        actual: u64,
    },
    /// The XXH64 in the trailer disagrees with the stream.
    ChecksumMismatch {
        /// Hash in the trailer.
        expected: u64,
        /// Hash of the bytes seen.
        actual: u64,
    },
    /// Bytes follow the trailer.
    TrailingData,
    /// A record arrived after the trailer (streaming reader misuse).
    AfterTrailer,
    /// The checkpoint wrote an ERROR record: the image is incomplete.
    CheckpointFailed,
    /// An objref defines an id out of order, or refers to an id not yet defined.
    BadObjref(u32),
    /// A reserved field is not zero.
    NonZeroReserved,
    /// A field holds a value outside its domain.
    BadField(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated => write!(f, "image is truncated"),
            Self::BadMagic => write!(f, "not a cr image (bad magic)"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "unsupported format version {v} (this reads {FORMAT_VERSION_MIN}..={FORMAT_VERSION})"
            ),
            Self::UnsupportedArch(a) => write!(f, "unsupported architecture id {a}"),
            Self::UnknownHeaderFlags(x) => write!(f, "unknown header flags {x:#x}"),
            Self::BadRecordLength(l) => write!(f, "bad record length {l}"),
            Self::BadPayloadLength { kind, len } => {
                write!(f, "bad payload length {len} for record kind {kind:#x}")
            }
            Self::MissingHeader => write!(f, "first record is not a header"),
            Self::DuplicateHeader => write!(f, "second header record"),
            Self::UnknownKind(k) => write!(f, "unknown mandatory record kind {k:#x}"),
            Self::NonZeroPadding => write!(f, "record padding is not zero"),
            Self::BadString => write!(f, "malformed string field"),
            Self::RecordCountMismatch { expected, actual } => {
                write!(f, "trailer counts {expected} records, stream has {actual}")
            }
            Self::StreamLengthMismatch { expected, actual } => {
                write!(f, "trailer says {expected} bytes, stream has {actual}")
            }
            Self::ChecksumMismatch { expected, actual } => {
                write!(f, "checksum mismatch: trailer {expected:#018x}, stream {actual:#018x}")
            }
            Self::TrailingData => write!(f, "data after the trailer"),
            Self::AfterTrailer => write!(f, "record after the trailer"),
            Self::CheckpointFailed => write!(f, "image holds an ERROR record: checkpoint failed"),
            Self::BadObjref(id) => write!(f, "bad objref {id}"),
            Self::NonZeroReserved => write!(f, "reserved field is not zero"),
            Self::BadField(name) => write!(f, "bad value in field {name}"),
        }
    }
}

/// A rejected stream: what was wrong, and the byte offset of the record (or field) at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatError {
    /// Offset in the stream.
    pub offset: u64,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.kind)
    }
}

/// Result of parsing.
pub type Result<T> = core::result::Result<T, FormatError>;

/// Rounds `len` up to the record alignment.
pub const fn align_up(len: usize) -> usize {
    (len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Padding bytes after a record of `len` bytes.
pub const fn padding(len: usize) -> usize {
    align_up(len) - len
}

// XXH64 (Yann Collet's xxHash, 64-bit, seed 0) over the stream. It replaced CRC32C in format 4:
// it runs at memory speed in plain integer code everywhere, where CRC32C needs a CPU instruction
// that emulators (the TCG test VM) run at a tenth of memcpy's speed.
const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;
const P4: u64 = 0x85eb_ca77_c2b2_ae63;
const P5: u64 = 0x27d4_eb2f_1656_67c5;
const STRIPE: usize = 32;

#[inline(always)]
const fn xxh_round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

const fn xxh_merge(acc: u64, lane: u64) -> u64 {
    (acc ^ xxh_round(0, lane)).wrapping_mul(P1).wrapping_add(P4)
}

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The four lanes after `stripes` more stripes. The hot loop of every image byte: the lanes
/// stay in registers, and fixed offsets into a fixed-size stripe need no bounds checks (the
/// kernel builds for size, which would otherwise call out once per 32 bytes).
#[inline(always)]
fn xxh_stripes(lanes: [u64; 4], stripes: core::slice::ChunksExact<'_, u8>) -> [u64; 4] {
    let [mut v1, mut v2, mut v3, mut v4] = lanes;
    for s in stripes {
        let Ok(s) = <&[u8; STRIPE]>::try_from(s) else {
            continue;
        };
        v1 = xxh_round(v1, le64(&s[0..8]));
        v2 = xxh_round(v2, le64(&s[8..16]));
        v3 = xxh_round(v3, le64(&s[16..24]));
        v4 = xxh_round(v4, le64(&s[24..32]));
    }
    [v1, v2, v3, v4]
}

/// Incremental XXH64 (seed 0) over the stream. It is plain data: the state can be handed to
/// another CPU to go on hashing a large record while this one writes it.
#[derive(Clone, Copy, Debug)]
pub struct Xxh64 {
    lanes: [u64; 4],
    total: u64,
    buf: [u8; STRIPE],
    buffered: usize,
}

impl Default for Xxh64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Xxh64 {
    /// A hash over no bytes yet.
    pub const fn new() -> Self {
        Self {
            lanes: [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)],
            total: 0,
            buf: [0; STRIPE],
            buffered: 0,
        }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total = self.total.wrapping_add(bytes.len() as u64);
        if self.buffered > 0 {
            let take = (STRIPE - self.buffered).min(bytes.len());
            self.buf[self.buffered..self.buffered + take].copy_from_slice(&bytes[..take]);
            self.buffered += take;
            bytes = &bytes[take..];
            if self.buffered < STRIPE {
                return;
            }
            let buf = self.buf;
            self.lanes = xxh_stripes(self.lanes, buf.chunks_exact(STRIPE));
            self.buffered = 0;
        }
        let stripes = bytes.chunks_exact(STRIPE);
        let rest = stripes.remainder();
        self.lanes = xxh_stripes(self.lanes, stripes);
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// The hash of everything fed so far.
    pub fn value(&self) -> u64 {
        let [v1, v2, v3, v4] = self.lanes;
        let mut h = if self.total >= STRIPE as u64 {
            let h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            xxh_merge(xxh_merge(xxh_merge(xxh_merge(h, v1), v2), v3), v4)
        } else {
            P5
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.buf[..self.buffered];
        while rest.len() >= 8 {
            h ^= xxh_round(0, le64(rest));
            h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            let w = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            h ^= u64::from(w).wrapping_mul(P1);
            h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            rest = &rest[4..];
        }
        for &b in rest {
            h ^= u64::from(b).wrapping_mul(P5);
            h = h.rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

/// Little-endian field decoder over one payload. Every read is bounds-checked; running past the
/// end is reported as a bad payload length for the record being decoded.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }
}

/// Little-endian field encoder into a fixed buffer, used by the `encode` methods below, whose
/// buffers are sized by their `LEN` constants so no write can run past the end.
struct Put<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Put<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        out.fill(0);
        Self { out, pos: 0 }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// `{ kind, len }` at the start of every record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Record kind: a [`RecordKind`] value, possibly with [`KIND_OPTIONAL`].
    pub kind: u32,
    /// Header plus payload, without padding.
    pub len: u32,
}

impl RecordHeader {
    /// Header for a record with `payload_len` bytes of payload.
    pub fn for_payload(kind: u32, payload_len: usize) -> Option<Self> {
        let len = payload_len.checked_add(RECORD_HEADER_LEN)?;
        let len = u32::try_from(len).ok().filter(|&l| l <= MAX_RECORD_LEN)?;
        Some(Self { kind, len })
    }

    /// Decodes and bounds-checks a record header.
    pub fn decode(b: &[u8; RECORD_HEADER_LEN]) -> core::result::Result<Self, ErrorKind> {
        let kind = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if (len as usize) < RECORD_HEADER_LEN || len > MAX_RECORD_LEN {
            return Err(ErrorKind::BadRecordLength(len));
        }
        Ok(Self { kind, len })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0; RECORD_HEADER_LEN];
        b[..4].copy_from_slice(&self.kind.to_le_bytes());
        b[4..].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Payload length.
    pub fn payload_len(&self) -> usize {
        self.len as usize - RECORD_HEADER_LEN
    }

    /// Zero padding after the payload.
    pub fn padding_len(&self) -> usize {
        padding(self.len as usize)
    }
}

/// Flags of [`Header::flags`].
pub mod header_flags {
    /// A precopy image: only PRECOPY records, the memory a thawed checkpoint copied while the
    /// tree ran. In the same stream, the image of the frozen round follows it, whose KEEP
    /// records refer to these pages; neither restores without the other.
    pub const PRECOPY: u32 = 1;
}

/// Payload of the HEADER record: what a restart must match before it trusts anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version of the stream.
    pub format_version: u32,
    /// [`ARCH_X86_64`].
    pub arch: u32,
    /// Image flags: [`header_flags`].
    pub flags: u32,
    /// Page size of the checkpointed kernel.
    pub page_size: u32,
    /// Size of the XSAVE area the checkpointed CPU used.
    pub xstate_size: u32,
    /// XCR0: the xstate components the checkpointed CPU had enabled.
    pub xfeatures: u64,
    /// Checkpoint time, nanoseconds since the epoch.
    pub time_ns: u64,
    /// `uname -r` of the checkpointed kernel, NUL padded.
    pub release: [u8; RELEASE_LEN],
}

impl Header {
    /// Payload size on the wire.
    pub const LEN: usize = 5 * 4 + 4 + 2 * 8 + 72;
    /// Flags this version defines.
    pub const KNOWN_FLAGS: u32 = header_flags::PRECOPY;

    /// The release string, without its NUL padding.
    pub fn release_str(&self) -> &str {
        let end = self
            .release
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(RELEASE_LEN);
        core::str::from_utf8(&self.release[..end]).unwrap_or("?")
    }

    /// Stores `release`, truncated to fit with its terminating NUL.
    pub fn set_release(&mut self, release: &[u8]) {
        self.release = [0; RELEASE_LEN];
        let n = release.len().min(RELEASE_LEN - 1);
        self.release[..n].copy_from_slice(&release[..n]);
    }

    /// Encodes the payload.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        let mut p = Put::new(&mut out);
        p.u32(self.format_version);
        p.u32(self.arch);
        p.u32(self.flags);
        p.u32(self.page_size);
        p.u32(self.xstate_size);
        p.u32(0);
        p.u64(self.xfeatures);
        p.u64(self.time_ns);
        p.bytes(&self.release);
        out
    }

    /// Decodes and validates the payload.
    pub fn decode(payload: &[u8]) -> core::result::Result<Self, ErrorKind> {
        let bad_len = ErrorKind::BadPayloadLength {
            kind: RecordKind::Header as u32,
            len: payload.len() as u32,
        };
        if payload.len() != Self::LEN {
            // The version comes first so that a newer image is reported as such rather than
            // as a malformed one.
            if let Some(v) = Fields::new(payload).u32() {
                if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&v) {
                    return Err(ErrorKind::UnsupportedVersion(v));
                }
            }
            return Err(bad_len);
        }
        let mut f = Fields::new(payload);
        let mut h = Header {
            format_version: f.u32().ok_or(bad_len)?,
            arch: f.u32().ok_or(bad_len)?,
            flags: f.u32().ok_or(bad_len)?,
            page_size: f.u32().ok_or(bad_len)?,
            xstate_size: f.u32().ok_or(bad_len)?,
            xfeatures: 0,
            time_ns: 0,
            release: [0; RELEASE_LEN],
        };
        if f.u32().ok_or(bad_len)? != 0 {
            return Err(ErrorKind::NonZeroReserved);
        }
        h.xfeatures = f.u64().ok_or(bad_len)?;
        h.time_ns = f.u64().ok_or(bad_len)?;
        let release = f.take(72).ok_or(bad_len)?;
        h.release.copy_from_slice(&release[..RELEASE_LEN]);
        if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&h.format_version) {
            return Err(ErrorKind::UnsupportedVersion(h.format_version));
        }
        if h.arch != ARCH_X86_64 {
            return Err(ErrorKind::UnsupportedArch(h.arch));
        }
        if h.flags & !Self::KNOWN_FLAGS != 0 {
            return Err(ErrorKind::UnknownHeaderFlags(h.flags & !Self::KNOWN_FLAGS));
        }
        // The release must be NUL-terminated, valid UTF-8, and followed only by NULs.
        let end = h
            .release
            .iter()
            .position(|&b| b == 0)
            .ok_or(ErrorKind::BadString)?;
        if core::str::from_utf8(&h.release[..end]).is_err()
            || h.release[end..].iter().any(|&b| b != 0)
            || release[RELEASE_LEN..].iter().any(|&b| b != 0)
        {
            return Err(ErrorKind::BadString);
        }
        if !h.page_size.is_power_of_two() || h.page_size < 4096 {
            return Err(ErrorKind::BadField("page_size"));
        }
        Ok(h)
    }
}

/// Payload of the TRAILER record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Records before the trailer, the header included.
    pub records: u32,
    /// Bytes before the trailer record, magic included.
    pub stream_len: u64,
    /// XXH64 of those bytes.
    pub xxh64: u64,
}

impl Trailer {
    /// Payload size on the wire.
    pub const LEN: usize = 24;

    /// Encodes the payload.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        let mut p = Put::new(&mut out);
        p.u32(self.records);
        p.u32(0);
        p.u64(self.stream_len);
        p.u64(self.xxh64);
        out
    }

    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> core::result::Result<Self, ErrorKind> {
        let bad_len = ErrorKind::BadPayloadLength {
            kind: RecordKind::Trailer as u32,
            len: payload.len() as u32,
        };
        if payload.len() != Self::LEN {
            return Err(bad_len);
        }
        let mut f = Fields::new(payload);
        let records = f.u32().ok_or(bad_len)?;
        let reserved0 = f.u32().ok_or(bad_len)?;
        let stream_len = f.u64().ok_or(bad_len)?;
        let xxh64 = f.u64().ok_or(bad_len)?;
        if reserved0 != 0 {
            return Err(ErrorKind::NonZeroReserved);
        }
        Ok(Self {
            records,
            stream_len,
            xxh64,
        })
    }
}

/// Defines a fixed-layout record part made of little-endian `u32` and `u64` fields, with `LEN`,
/// `encode` and `decode`. Variable parts (paths, arrays) follow it in the payload and are read
/// with [`split_fixed`].
macro_rules! wire_struct {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:tt ),* $(,)? }) => {
        $(#[$m])*
        // `repr(C)`: the kernel module's C shim fills some of these directly (and asserts their
        // size); the wire encoding itself never depends on the layout.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl $name {
            /// Size on the wire.
            pub const LEN: usize = 0 $( + core::mem::size_of::<$ty>() )*;

            /// Encodes into `out`, which must be `LEN` bytes.
            pub fn encode_into(&self, out: &mut [u8]) {
                let mut p = Put::new(out);
                $( p.$ty(self.$field); )*
            }

            /// Encodes into a fresh array.
            pub fn encode(&self) -> [u8; Self::LEN] {
                let mut out = [0u8; Self::LEN];
                self.encode_into(&mut out);
                out
            }

            /// Decodes from the first `LEN` bytes of `bytes`.
            pub fn decode(bytes: &[u8]) -> Option<Self> {
                let mut f = Fields::new(bytes);
                Some(Self { $( $field: f.$ty()?, )* })
            }
        }
    };
}

/// Splits a payload into its fixed part, decoded, and the variable rest.
pub fn split_fixed<T>(
    kind: RecordKind,
    payload: &[u8],
    len: usize,
    decode: fn(&[u8]) -> Option<T>,
) -> core::result::Result<(T, &[u8]), ErrorKind> {
    let bad = ErrorKind::BadPayloadLength {
        kind: kind as u32,
        len: payload.len() as u32,
    };
    let fixed = payload.get(..len).ok_or(bad)?;
    Ok((decode(fixed).ok_or(bad)?, &payload[len..]))
}

/// Decodes a payload that is exactly one fixed part.
pub fn exact_fixed<T>(
    kind: RecordKind,
    payload: &[u8],
    len: usize,
    decode: fn(&[u8]) -> Option<T>,
) -> core::result::Result<T, ErrorKind> {
    let (v, rest) = split_fixed(kind, payload, len, decode)?;
    if rest.is_empty() {
        Ok(v)
    } else {
        Err(ErrorKind::BadPayloadLength {
            kind: kind as u32,
            len: payload.len() as u32,
        })
    }
}

/// Takes `len` bytes of a path from `rest`: non-empty, absolute, no NUL. Returns it and what
/// follows.
pub fn take_path(rest: &[u8], len: u32) -> core::result::Result<(&[u8], &[u8]), ErrorKind> {
    let len = len as usize;
    if len == 0 || len > PATH_MAX || rest.len() < len {
        return Err(ErrorKind::BadString);
    }
    let (path, rest) = rest.split_at(len);
    if path[0] != b'/' || path.contains(&0) {
        return Err(ErrorKind::BadString);
    }
    Ok((path, rest))
}

/// Reads `n` little-endian u64 from the front of `rest`; returns an iterator-ready slice and what
/// follows.
pub fn take_u64s(rest: &[u8], n: usize) -> core::result::Result<(&[u8], &[u8]), ErrorKind> {
    let bytes = n.checked_mul(8).ok_or(ErrorKind::BadField("count"))?;
    if rest.len() < bytes {
        return Err(ErrorKind::BadField("count"));
    }
    Ok(rest.split_at(bytes))
}

/// The `i`th little-endian u64 of `words` (which [`take_u64s`] sized).
pub fn u64_at(words: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&words[i * 8..i * 8 + 8]);
    u64::from_le_bytes(b)
}

/// The `i`th little-endian u32 of `words`.
pub fn u32_at(words: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&words[i * 4..i * 4 + 4]);
    u32::from_le_bytes(b)
}

/// Longest path stored (`PATH_MAX` without the NUL).
pub const PATH_MAX: usize = 4095;
/// Task comm length (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Resource limits stored (`RLIM_NLIMITS` on x86_64).
pub const RLIMIT_COUNT: usize = 16;
/// Signals with handlers (`_NSIG`).
pub const SIGNAL_COUNT: usize = 64;
/// Size of `kernel_siginfo_t` on x86_64.
pub const SIGINFO_LEN: usize = 48;
/// Most auxv words stored (`AT_VECTOR_SIZE` on x86_64).
pub const AUXV_WORDS: usize = 2 * (3 + 24);
/// Most supplementary groups stored (`NGROUPS_MAX`).
pub const GROUPS_MAX: usize = 65536;
/// Size of `struct user_regs_struct` on x86_64.
pub const USER_REGS_LEN: usize = 27 * 8;

wire_struct! {
    /// Head of the TREE record.
    pub struct TreeHeader {
        /// Number of [`TreeEntry`]s that follow.
        pub count: u32,
        /// [`tree_flags`].
        pub flags: u32,
    }
}

/// Flags of [`TreeHeader`].
pub mod tree_flags {
    /// The root is the init of its pid namespace (a container): pids are that namespace's,
    /// and restart recreates it, with the UTS and IPC namespaces.
    pub const CONTAINER: u32 = 1;
    /// Every flag this version defines.
    pub const KNOWN: u32 = CONTAINER;
}

/// Flags of [`TreeEntry`].
pub mod entry_flags {
    /// The task is a zombie: it has no section; `exit_status` is its wait status.
    pub const ZOMBIE: u32 = 1;
    /// `PR_SET_CHILD_SUBREAPER` is set (on the thread group).
    pub const SUBREAPER: u32 = 2;
    /// Every flag this version defines.
    pub const KNOWN: u32 = ZOMBIE | SUBREAPER;
}

wire_struct! {
    /// One task of the tree, with pids as the root's pid namespace sees them.
    ///
    /// Entries come in the order of the tasks' sections: a depth-first walk from the root,
    /// each process followed by its other threads and then by its children, by pid. The four
    /// objrefs name the task's address space, descriptor table, root/cwd and signal handlers:
    /// the first entry that names an id defines it, and its section carries that state; later
    /// entries share it (threads, `CLONE_FILES`, `CLONE_FS`). Zombies have none (0).
    pub struct TreeEntry {
        /// Thread id.
        pub pid: u32,
        /// Thread-group id.
        pub tgid: u32,
        /// Parent's tgid, or 0 for the root.
        pub ppid: u32,
        /// Process group, 0 if outside the namespace.
        pub pgid: u32,
        /// Session, 0 if outside the namespace.
        pub sid: u32,
        /// [`entry_flags`].
        pub flags: u32,
        /// Signal the parent gets at exit (`clone3`'s `exit_signal`).
        pub exit_signal: u32,
        /// A zombie's wait status.
        pub exit_status: u32,
        /// Objref of the address space.
        pub mm_ref: u32,
        /// Objref of the descriptor table.
        pub files_ref: u32,
        /// Objref of root, cwd and umask.
        pub fs_ref: u32,
        /// Objref of the signal handlers.
        pub sighand_ref: u32,
    }
}

impl TreeEntry {
    /// A thread other than its group's leader.
    pub fn is_thread(&self) -> bool {
        self.pid != self.tgid
    }

    /// A zombie, which has no section.
    pub fn is_zombie(&self) -> bool {
        self.flags & entry_flags::ZOMBIE != 0
    }
}

/// Length of the node name and domain name fields (`__NEW_UTS_LEN`).
pub const UTS_NAME_MAX: usize = 64;

wire_struct! {
    /// Fixed part of the UTS record.
    pub struct UtsRecord {
        /// Length of the node name that follows.
        pub nodename_len: u32,
        /// Length of the domain name that follows it.
        pub domainname_len: u32,
    }
}

wire_struct! {
    /// Fixed part of a PIPE record.
    pub struct PipeRecord {
        /// The pipe's objref (defined here).
        pub objref: u32,
        /// Capacity in bytes (`F_GETPIPE_SZ`): a power of two number of pages.
        pub capacity: u32,
        /// Buffered bytes that follow.
        pub data_len: u32,
        /// Buffers described after the bytes (format 9), zero when none of them is a packet:
        /// then the bytes are one stream. Otherwise each buffer, in order, is a `u32`: its length
        /// (1 to a page), with [`PIPE_PACKET`] set for a packet, which a read returns alone (it
        /// was written in packet mode, `O_DIRECT`); the lengths add up to `data_len`.
        pub segments: u32,
    }
}

/// In a PIPE record's buffer list, the bit that marks a packet.
pub const PIPE_PACKET: u32 = 1 << 31;

/// Which lock a LOCK record holds.
pub mod lock_kind {
    /// A `flock()` lock: held by an open file, on the whole file; `start` and `end` are 0.
    pub const FLOCK: u32 = 1;
    /// A POSIX record lock (`F_SETLK`): held by the descriptor table whose section holds the
    /// record, on bytes `start..=end`.
    pub const POSIX: u32 = 2;
    /// An open file description lock (`F_OFD_SETLK`): held by an open file, on `start..=end`.
    pub const OFD: u32 = 3;
}

/// A LOCK's `end` for a lock that runs to the end of the file, however long it grows.
pub const LOCK_TO_END: u64 = i64::MAX as u64;

wire_struct! {
    /// A LOCK record.
    pub struct LockRecord {
        /// The objref of the open file it is held through: for a POSIX lock, one of the
        /// table's open files of its inode, opened for what the lock needs.
        pub file: u32,
        /// A [`lock_kind`].
        pub kind: u32,
        /// 1 for a write (exclusive) lock, 0 for a read (shared) one.
        pub write: u32,
        /// Zero.
        pub reserved: u32,
        /// Its first byte.
        pub start: u64,
        /// Its last byte, or [`LOCK_TO_END`].
        pub end: u64,
    }
}

/// What an EVENT record describes.
pub mod event_kind {
    /// An eventfd: `count` is its counter, `flags` 1 for `EFD_SEMAPHORE`.
    pub const EVENTFD: u32 = 1;
    /// A timerfd: `clock`, `flags` (its `TFD_TIMER_*` settime flags), `count` (expirations not
    /// yet read), `value_ns` and `interval_ns`.
    pub const TIMERFD: u32 = 2;
    /// A signalfd: `mask` is the signals it reads.
    pub const SIGNALFD: u32 = 3;
    /// An epoll file, every field 0: its interest list is an EPOLL record of its own.
    pub const EPOLL: u32 = 4;
}

wire_struct! {
    /// Fixed part of an EPOLL record.
    pub struct EpollHeader {
        /// The objref of the epoll's open file (its FILE record's).
        pub epoll: u32,
        /// Watches that follow.
        pub count: u32,
    }
}

/// The `EPOLL*` event bits an [`EpollWatch`] may hold: what `epoll_ctl()` takes.
pub const EPOLL_EVENTS_KNOWN: u32 = 0xf000_27ff;
/// `EPOLLET`: edge-triggered.
pub const EPOLLET: u32 = 1 << 31;

/// Flags of an [`EpollWatch`].
pub mod epoll_watch_flags {
    /// An event was waiting to be reported: an edge-triggered watch reports its target's
    /// state once after restart only with it.
    pub const READY: u32 = 1;
}

wire_struct! {
    /// One file an epoll watches.
    pub struct EpollWatch {
        /// The objref of the watched open file, defined earlier in the stream.
        pub file: u32,
        /// The descriptor number it was registered under (it may be closed since).
        pub fd: u32,
        /// Its `EPOLL*` events, with `EPOLLET` and `EPOLLONESHOT`; a one-shot watch that fired
        /// has only those two (and `EPOLLWAKEUP`, `EPOLLEXCLUSIVE`).
        pub events: u32,
        /// [`epoll_watch_flags`].
        pub flags: u32,
        /// What an event reports.
        pub data: u64,
    }
}

/// `TFD_TIMER_ABSTIME`: an EVENT's `value_ns` is a time on its clock, not a time left.
pub const TFD_TIMER_ABSTIME: u32 = 1;
/// `TFD_TIMER_CANCEL_ON_SET`: the timer is cancelled when the real-time clock is set.
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;
/// `CLOCK_REALTIME`.
pub const CLOCK_REALTIME: u32 = 0;
/// `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC: u32 = 1;
/// `CLOCK_BOOTTIME`.
pub const CLOCK_BOOTTIME: u32 = 7;

wire_struct! {
    /// An EVENT record: the state of one event file, which only one open file ever has.
    pub struct EventRecord {
        /// The event file's objref (defined here).
        pub objref: u32,
        /// An [`event_kind`] value.
        pub kind: u32,
        /// eventfd: 1 for `EFD_SEMAPHORE`. timerfd: its settime flags. Else 0.
        pub flags: u32,
        /// timerfd: its clock id. Else 0.
        pub clock: u32,
        /// eventfd: the counter. timerfd: expirations not yet read. Else 0.
        pub count: u64,
        /// signalfd: bit `n - 1` for each signal `n` it reads. Else 0.
        pub mask: u64,
        /// timerfd: the next expiry: nanoseconds from the checkpoint, or with
        /// [`TFD_TIMER_ABSTIME`] a time on the clock; 0 when disarmed. Else 0.
        pub value_ns: u64,
        /// timerfd: the period in nanoseconds, 0 for a one-shot timer. Else 0.
        pub interval_ns: u64,
    }
}

/// What a SHMEM record describes.
pub mod shmem_kind {
    /// A memfd (`memfd_create`): the name that follows is its own ("memfd:...").
    pub const MEMFD: u32 = 1;
    /// MAP_SHARED anonymous memory: the name is "dev/zero", as the kernel calls it.
    pub const ANON: u32 = 2;
    /// A regular file of a tmpfs that was unlinked while open: the name is the directory it
    /// was in, and restart recreates it there with `O_TMPFILE`, unlinked again.
    pub const UNLINKED: u32 = 3;
}

/// `F_SEAL_*` bits a memfd can carry (`F_SEAL_SEAL` to `F_SEAL_EXEC`).
pub const SEALS_KNOWN: u32 = 0x3f;

wire_struct! {
    /// Fixed part of a SHMEM record.
    pub struct ShmemRecord {
        /// The object's objref (defined here).
        pub objref: u32,
        /// Length of the name that follows.
        pub name_len: u32,
        /// Size in bytes.
        pub size: u64,
        /// A [`shmem_kind`] value.
        pub kind: u32,
        /// `F_SEAL_*` seals of a memfd.
        pub seals: u32,
        /// Inode mode (type and permission bits).
        pub mode: u32,
        /// Owner, as the checkpointer's user namespace sees it.
        pub uid: u32,
        /// Group, likewise.
        pub gid: u32,
        /// Zero.
        pub reserved: u32,
        /// Last access, nanoseconds since the epoch.
        pub atime_ns: i64,
        /// Last modification, nanoseconds since the epoch.
        pub mtime_ns: i64,
    }
}

/// Flags of [`TaskRecord`].
pub mod task_flags {
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub const NO_NEW_PRIVS: u32 = 1;
    /// Every flag this version defines.
    pub const KNOWN: u32 = NO_NEW_PRIVS;
}

wire_struct! {
    /// Fixed part of the TASK record.
    pub struct TaskRecord {
        /// Thread id.
        pub pid: u32,
        /// Thread-group id.
        pub tgid: u32,
        /// `personality(2)` value.
        pub personality: u32,
        /// Signal sent to the parent at exit.
        pub exit_signal: u32,
        /// `PR_SET_PDEATHSIG` value.
        pub pdeath_signal: u32,
        /// `sas_ss_flags` of the alternate signal stack.
        pub sas_ss_flags: u32,
        /// [`task_flags`].
        pub flags: u32,
        /// `PR_GET_DUMPABLE` value (0, 1 or 2), shared by the threads of an address space.
        pub dumpable: u32,
        /// `set_tid_address` pointer.
        pub clear_child_tid: u64,
        /// `set_robust_list` head.
        pub robust_list: u64,
        /// Its length.
        pub robust_list_len: u64,
        /// Alternate signal stack base.
        pub sas_ss_sp: u64,
        /// Alternate signal stack size.
        pub sas_ss_size: u64,
        /// Blocked signal mask, bit n-1 for signal n.
        pub blocked: u64,
    }
}

wire_struct! {
    /// Fixed part of the CREDS record; ids as the checkpointer's user namespace sees them.
    pub struct CredsRecord {
        /// Real uid.
        pub uid: u32,
        /// Effective uid.
        pub euid: u32,
        /// Saved uid.
        pub suid: u32,
        /// Filesystem uid.
        pub fsuid: u32,
        /// Real gid.
        pub gid: u32,
        /// Effective gid.
        pub egid: u32,
        /// Saved gid.
        pub sgid: u32,
        /// Filesystem gid.
        pub fsgid: u32,
        /// `securebits`.
        pub securebits: u32,
        /// Supplementary groups that follow.
        pub ngroups: u32,
        /// Inheritable capabilities.
        pub cap_inheritable: u64,
        /// Permitted capabilities.
        pub cap_permitted: u64,
        /// Effective capabilities.
        pub cap_effective: u64,
        /// Bounding set.
        pub cap_bset: u64,
        /// Ambient capabilities.
        pub cap_ambient: u64,
    }
}

wire_struct! {
    /// One resource limit.
    pub struct Rlimit {
        /// Soft limit.
        pub cur: u64,
        /// Hard limit.
        pub max: u64,
    }
}

wire_struct! {
    /// One signal's disposition (`struct k_sigaction`).
    pub struct SigAction {
        /// Handler address, or 0 (SIG_DFL) or 1 (SIG_IGN).
        pub handler: u64,
        /// `SA_*` flags.
        pub flags: u64,
        /// `sa_restorer`.
        pub restorer: u64,
        /// Signals blocked while the handler runs.
        pub mask: u64,
    }
}

wire_struct! {
    /// Head of a SIGPENDING record.
    pub struct PendingHeader {
        /// 1 for the thread group's shared queue, 0 for the task's own.
        pub shared: u32,
        /// [`PendingSignal`]s that follow, each [`PendingSignal::LEN`] + [`SIGINFO_LEN`] bytes.
        pub count: u32,
    }
}

wire_struct! {
    /// One queued signal; its `kernel_siginfo_t` follows.
    pub struct PendingSignal {
        /// Signal number, 1..=64.
        pub signo: u32,
        /// Zero.
        pub reserved: u32,
    }
}

wire_struct! {
    /// The ITIMERS record.
    pub struct ItimersRecord {
        /// ITIMER_REAL: nanoseconds until it fires, 0 if disarmed.
        pub real_value_ns: u64,
        /// ITIMER_REAL: reload interval in nanoseconds.
        pub real_interval_ns: u64,
        /// ITIMER_VIRTUAL (format 9): nanoseconds of the process's user CPU time until it
        /// fires, 0 if disarmed.
        pub virt_value_ns: u64,
        /// ITIMER_VIRTUAL: reload interval in nanoseconds of user CPU time.
        pub virt_interval_ns: u64,
        /// ITIMER_PROF (format 9): nanoseconds of the process's user and system CPU time
        /// until it fires, 0 if disarmed.
        pub prof_value_ns: u64,
        /// ITIMER_PROF: reload interval in nanoseconds of CPU time.
        pub prof_interval_ns: u64,
    }
}

/// The length of an ITIMERS record before format 9, which held ITIMER_REAL alone.
pub const ITIMERS_REAL_ONLY_LEN: usize = 16;

wire_struct! {
    /// Fixed part of the FS record.
    pub struct FsRecord {
        /// File creation mask.
        pub umask: u32,
        /// Length of the root path that follows.
        pub root_len: u32,
        /// Length of the cwd path that follows the root.
        pub cwd_len: u32,
        /// Zero.
        pub reserved: u32,
    }
}

/// What a FILE record describes.
pub mod file_kind {
    /// A regular file, reopened by path and checked by inode identity.
    pub const REGULAR: u32 = 1;
    /// A directory, likewise.
    pub const DIRECTORY: u32 = 2;
    /// `/dev/null`, `/dev/zero`, `/dev/random` or `/dev/urandom` (by `rdev`).
    pub const MEMORY_DEVICE: u32 = 3;
    /// A terminal: re-attached to the restarting caller's terminal.
    pub const TTY: u32 = 4;
    /// One end of a pipe: `object` is the PIPE's objref, `flags` tells which end.
    pub const PIPE: u32 = 5;
    /// A memfd or other shmem file: `object` is the SHMEM's objref.
    pub const SHMEM: u32 = 6;
    /// A FIFO (named pipe): reopened by path and checked by inode identity, like a regular
    /// file; `object` is the PIPE's objref, whose bytes the FIFO buffered (format 7).
    pub const FIFO: u32 = 7;
    /// An eventfd, timerfd, signalfd or epoll file: `object` is the EVENT's objref (format 8).
    pub const EVENT: u32 = 8;
}

wire_struct! {
    /// Fixed part of a FILE record.
    pub struct FileRecord {
        /// Descriptor number.
        pub fd: u32,
        /// A [`file_kind`] value.
        pub kind: u32,
        /// `f_flags` (access mode, O_APPEND, O_NONBLOCK...).
        pub flags: u32,
        /// 1 when close-on-exec.
        pub cloexec: u32,
        /// File position.
        pub pos: u64,
        /// Device of the inode (`st_dev`).
        pub dev: u64,
        /// Inode number.
        pub ino: u64,
        /// `st_rdev` of a device.
        pub rdev: u32,
        /// Inode mode.
        pub mode: u32,
        /// Size of a regular file at checkpoint.
        pub size: u64,
        /// Length of the path that follows.
        pub path_len: u32,
        /// The open file's objref: the next free id for a file seen first here, or the id of
        /// the FILE record whose open file this descriptor shares (dup, dup2, fork).
        pub objref: u32,
        /// For a pipe end, FIFO or shmem file, the objref of the PIPE or SHMEM it opens; else 0.
        pub object: u32,
        /// Zero.
        pub reserved: u32,
    }
}

wire_struct! {
    /// Fixed part of the MM record.
    pub struct MmRecord {
        /// Start of text.
        pub start_code: u64,
        /// End of text.
        pub end_code: u64,
        /// Start of data.
        pub start_data: u64,
        /// End of data.
        pub end_data: u64,
        /// Start of the brk heap.
        pub start_brk: u64,
        /// Current brk.
        pub brk: u64,
        /// Initial stack pointer area (`[stack]` in maps).
        pub start_stack: u64,
        /// Argument strings.
        pub arg_start: u64,
        /// End of them.
        pub arg_end: u64,
        /// Environment strings.
        pub env_start: u64,
        /// End of them.
        pub env_end: u64,
        /// Address of the vDSO text, 0 if none.
        pub vdso: u64,
        /// Device of the executable.
        pub exe_dev: u64,
        /// Inode of the executable.
        pub exe_ino: u64,
        /// u64 words of the saved auxv that follow.
        pub auxv_words: u32,
        /// Length of the exe path that follows the auxv.
        pub exe_len: u32,
    }
}

/// What a VMA record describes.
pub mod vma_kind {
    /// Private anonymous memory (heap, stack, mmap).
    pub const ANON: u32 = 1;
    /// A private file mapping: reopened by path; its COWed pages follow in PAGES records.
    pub const FILE_PRIVATE: u32 = 2;
    /// The vDSO text; recreated at the same address, with its data pages.
    pub const VDSO: u32 = 3;
    /// The vDSO's data pages; recreated together with [`VDSO`].
    pub const VVAR: u32 = 4;
    /// Shared memory without a path (MAP_SHARED anonymous, memfd): `object` names its SHMEM.
    pub const SHMEM: u32 = 5;
    /// A shared mapping of a regular file, reopened by path; the data lives in the file.
    pub const FILE_SHARED: u32 = 6;
}

wire_struct! {
    /// Fixed part of a VMA record.
    pub struct VmaRecord {
        /// First address.
        pub start: u64,
        /// End address (exclusive).
        pub end: u64,
        /// `vm_flags`, as the kernel keeps them.
        pub vm_flags: u64,
        /// File offset in pages.
        pub pgoff: u64,
        /// Device of a mapped file.
        pub dev: u64,
        /// Inode of a mapped file.
        pub ino: u64,
        /// A [`vma_kind`] value.
        pub kind: u32,
        /// Length of the path that follows.
        pub path_len: u32,
        /// For [`vma_kind::SHMEM`], the objref of its SHMEM record; else 0.
        pub object: u32,
        /// Zero.
        pub reserved: u32,
    }
}

wire_struct! {
    /// Fixed part of the PARENT record: which image the KEEP records refer to, as its trailer
    /// identifies it, so that a restart refuses any other. Its path follows.
    pub struct ParentRecord {
        /// The parent's length before its trailer record ([`Trailer::stream_len`]).
        pub length: u64,
        /// The parent's [`Trailer::xxh64`].
        pub checksum: u64,
        /// Length of the path that follows (0 if unknown): where the checkpoint found it.
        pub path_len: u32,
        /// Zero.
        pub reserved: u32,
    }
}

wire_struct! {
    /// Head of a PAGES record.
    pub struct PagesHeader {
        /// Pages in this record.
        pub count: u32,
        /// Zero.
        pub reserved: u32,
    }
}

/// Address-space ids of PRECOPY and KEEP records at or above this one name an address space
/// that a thawed checkpoint's rounds began from nothing. Below it, an id is the objref of the
/// address space's MM in the parent image, whose memory is where the copy began.
pub const FRESH_SPACE: u64 = 1 << 32;

wire_struct! {
    /// Head of a PRECOPY record; a PAGES payload follows.
    pub struct PrecopyHeader {
        /// The address space (never 0; see [`FRESH_SPACE`]).
        pub mm: u64,
    }
}

wire_struct! {
    /// Head of a KEEP record.
    pub struct KeepHeader {
        /// The address space whose copy holds the pages (never 0; see [`FRESH_SPACE`]).
        pub mm: u64,
        /// Runs that follow.
        pub count: u32,
        /// Zero.
        pub reserved: u32,
    }
}

/// Restart blocks a REGS record can carry.
pub mod restart_kind {
    /// None pending.
    pub const NONE: u32 = 0;
    /// An interrupted relative nanosleep/clock_nanosleep.
    pub const NANOSLEEP: u32 = 1;
}

wire_struct! {
    /// The REGS record: `struct user_regs_struct` words (r15 first, as the kernel lays them
    /// out) follow this fixed part.
    pub struct RegsRecord {
        /// A [`restart_kind`] value.
        pub restart_kind: u32,
        /// Clock of an interrupted nanosleep.
        pub restart_clockid: u32,
        /// `enum timespec_type` of its remaining-time pointer.
        pub restart_type: u32,
        /// Zero.
        pub reserved: u32,
        /// Where nanosleep writes the remaining time.
        pub restart_rmtp: u64,
        /// Nanoseconds the sleep still had to run at checkpoint.
        pub restart_remaining_ns: u64,
    }
}

/// Pages per PAGES record: 1024 pages of 4 KiB plus their addresses stay well below
/// [`MAX_RECORD_LEN`].
pub const PAGES_PER_RECORD: usize = 1024;

/// Validates that an ERROR payload is a non-empty UTF-8 message without NULs.
pub fn decode_error_message(payload: &[u8]) -> core::result::Result<&str, ErrorKind> {
    if payload.is_empty() || payload.contains(&0) {
        return Err(ErrorKind::BadString);
    }
    core::str::from_utf8(payload).map_err(|_| ErrorKind::BadString)
}

/// Objref bookkeeping, for both directions.
///
/// A checkpoint calls [`ObjrefSpace::allocate`] the first time it writes an object. A restart
/// calls [`ObjrefSpace::define`] for each object record and [`ObjrefSpace::check_ref`] for each
/// reference: a well-formed stream defines 1, 2, 3, ... in order and refers only to ids already
/// defined, so no table is needed to reject duplicates or forward references.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObjrefSpace {
    defined: u32,
}

impl ObjrefSpace {
    /// An empty space; the first id is 1 and 0 means "no object".
    pub const fn new() -> Self {
        Self { defined: 0 }
    }

    /// Hands out the next id, or `None` when 2^32-1 objects exist.
    pub fn allocate(&mut self) -> Option<u32> {
        self.defined = self.defined.checked_add(1)?;
        Some(self.defined)
    }

    /// Accepts the definition of `id`, which must be the next one.
    pub fn define(&mut self, id: u32) -> core::result::Result<(), ErrorKind> {
        match self.defined.checked_add(1) {
            Some(next) if next == id => {
                self.defined = id;
                Ok(())
            }
            _ => Err(ErrorKind::BadObjref(id)),
        }
    }

    /// Accepts a reference to `id`, which must already be defined.
    pub fn check_ref(&self, id: u32) -> core::result::Result<(), ErrorKind> {
        if id != 0 && id <= self.defined {
            Ok(())
        } else {
            Err(ErrorKind::BadObjref(id))
        }
    }

    /// For an id that may be defined by the reference itself (the TREE's objrefs): defines it
    /// when it is the next one and returns `true`, or accepts a known one and returns `false`.
    pub fn define_or_ref(&mut self, id: u32) -> core::result::Result<bool, ErrorKind> {
        if self.define(id).is_ok() {
            return Ok(true);
        }
        self.check_ref(id).map(|()| false)
    }

    /// Number of ids defined so far.
    pub fn count(&self) -> u32 {
        self.defined
    }
}

/// A decoded record, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the record header in the stream.
    pub offset: u64,
    /// Raw kind.
    pub kind: u32,
    /// Payload, without padding.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// The kind, when this version defines it.
    pub fn known_kind(&self) -> Option<RecordKind> {
        RecordKind::from_u32(self.kind)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamState {
    ExpectMagic,
    ExpectHeader,
    Body,
    /// A state record's body arrives in pieces: this many bytes of payload and padding remain.
    InBody {
        left: usize,
        pad: usize,
    },
    /// As `InBody`, with the running hash lent out ([`StreamValidator::lend`]).
    Lent {
        left: usize,
        pad: usize,
    },
    Done,
}

/// The sequential validator that every reader drives: the kernel's restart (record by record,
/// from a file), and [`ImageReader`] (from a byte slice).
///
/// Feed it the magic, then each record's header, payload and padding, in order. It checks the
/// framing and the record order, keeps the running checksum, and checks the trailer against the stream.
#[derive(Clone, Debug)]
pub struct StreamValidator {
    state: StreamState,
    offset: u64,
    hash: Xxh64,
    records: u32,
    header: Option<Header>,
    trailer: Option<Trailer>,
}

impl Default for StreamValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamValidator {
    /// A validator at the start of a stream.
    pub const fn new() -> Self {
        Self {
            state: StreamState::ExpectMagic,
            offset: 0,
            hash: Xxh64::new(),
            records: 0,
            header: None,
            trailer: None,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The header, once seen.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The trailer, once the stream is complete.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// True once a valid trailer was accepted.
    pub fn is_complete(&self) -> bool {
        self.state == StreamState::Done
    }

    fn err(&self, kind: ErrorKind) -> FormatError {
        FormatError {
            offset: self.offset,
            kind,
        }
    }

    fn consume(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.offset += bytes.len() as u64;
    }

    /// Accepts the eight magic bytes.
    pub fn magic(&mut self, bytes: &[u8; 8]) -> Result<()> {
        if self.state != StreamState::ExpectMagic {
            return Err(self.err(ErrorKind::BadMagic));
        }
        if *bytes != MAGIC {
            return Err(self.err(ErrorKind::BadMagic));
        }
        self.consume(bytes);
        self.state = StreamState::ExpectHeader;
        Ok(())
    }

    /// Accepts a record header and returns it decoded; the caller then reads
    /// `payload_len() + padding_len()` bytes and passes them to [`Self::record_body`].
    pub fn record_header(&mut self, bytes: &[u8; RECORD_HEADER_LEN]) -> Result<RecordHeader> {
        match self.state {
            StreamState::ExpectMagic => return Err(self.err(ErrorKind::BadMagic)),
            StreamState::InBody { .. } | StreamState::Lent { .. } => {
                return Err(self.err(ErrorKind::Truncated))
            }
            StreamState::Done => return Err(self.err(ErrorKind::AfterTrailer)),
            _ => {}
        }
        let hdr = RecordHeader::decode(bytes).map_err(|k| self.err(k))?;
        match (self.state, RecordKind::from_u32(hdr.kind)) {
            (StreamState::ExpectHeader, Some(RecordKind::Header)) => {}
            (StreamState::ExpectHeader, _) => return Err(self.err(ErrorKind::MissingHeader)),
            (_, Some(RecordKind::Header)) => return Err(self.err(ErrorKind::DuplicateHeader)),
            (_, None) if hdr.kind & KIND_OPTIONAL == 0 => {
                return Err(self.err(ErrorKind::UnknownKind(hdr.kind)))
            }
            _ => {}
        }
        Ok(hdr)
    }

    /// Accepts the body of the record whose header was just accepted: `payload` and the zero
    /// `pad` bytes that follow it. Header, trailer and error records are interpreted here;
    /// other kinds are for the caller. Returns the record's offset.
    pub fn record_body(&mut self, hdr: &RecordHeader, payload: &[u8], pad: &[u8]) -> Result<u64> {
        let offset = self.offset;
        let at = |kind| FormatError { offset, kind };
        if matches!(
            self.state,
            StreamState::InBody { .. } | StreamState::Lent { .. }
        ) {
            return Err(at(ErrorKind::Truncated));
        }
        if payload.len() != hdr.payload_len() || pad.len() != hdr.padding_len() {
            return Err(at(ErrorKind::Truncated));
        }
        if pad.iter().any(|&b| b != 0) {
            return Err(at(ErrorKind::NonZeroPadding));
        }
        match RecordKind::from_u32(hdr.kind) {
            Some(RecordKind::Header) => {
                self.header = Some(Header::decode(payload).map_err(at)?);
                self.state = StreamState::Body;
            }
            Some(RecordKind::Trailer) => {
                let t = Trailer::decode(payload).map_err(at)?;
                if t.records != self.records {
                    return Err(at(ErrorKind::RecordCountMismatch {
                        expected: t.records,
                        actual: self.records,
                    }));
                }
                if t.stream_len != self.offset {
                    return Err(at(ErrorKind::StreamLengthMismatch {
                        expected: t.stream_len,
                        actual: self.offset,
                    }));
                }
                if t.xxh64 != self.hash.value() {
                    return Err(at(ErrorKind::ChecksumMismatch {
                        expected: t.xxh64,
                        actual: self.hash.value(),
                    }));
                }
                self.trailer = Some(t);
                self.state = StreamState::Done;
            }
            Some(RecordKind::Error) => {
                decode_error_message(payload).map_err(at)?;
            }
            // State records are interpreted by their consumer, which knows their order.
            _ => {}
        }
        self.consume(&hdr.encode());
        self.consume(payload);
        self.consume(pad);
        if self.state != StreamState::Done {
            self.records += 1;
        }
        Ok(offset)
    }

    /// Starts the body of a state record whose header was just accepted, for a reader that
    /// takes it in pieces ([`Self::body_part`]) instead of whole: a record of pages goes straight
    /// to where it belongs, and is hashed there. Returns the record's offset.
    pub fn begin_body(&mut self, hdr: &RecordHeader) -> Result<u64> {
        let offset = self.offset;
        if !matches!(self.state, StreamState::Body) {
            return Err(self.err(ErrorKind::Truncated));
        }
        if matches!(
            RecordKind::from_u32(hdr.kind),
            Some(RecordKind::Header | RecordKind::Trailer | RecordKind::Error)
        ) {
            return Err(self.err(ErrorKind::UnknownKind(hdr.kind)));
        }
        self.consume(&hdr.encode());
        self.state = StreamState::InBody {
            left: hdr.payload_len() + hdr.padding_len(),
            pad: hdr.padding_len(),
        };
        Ok(offset)
    }

    /// Bytes of the body begun last, in order: payload, then padding, which must be zero.
    pub fn body_part(&mut self, bytes: &[u8]) -> Result<()> {
        let StreamState::InBody { left, pad } = self.state else {
            return Err(self.err(ErrorKind::Truncated));
        };
        if bytes.len() > left {
            return Err(self.err(ErrorKind::Truncated));
        }
        let payload_left = left - pad;
        if bytes.len() > payload_left && bytes[payload_left..].iter().any(|&b| b != 0) {
            return Err(self.err(ErrorKind::NonZeroPadding));
        }
        self.consume(bytes);
        self.state = StreamState::InBody {
            left: left - bytes.len(),
            pad,
        };
        Ok(())
    }

    /// Bytes of the body begun last that are still to come.
    pub fn body_left(&self) -> usize {
        match self.state {
            StreamState::InBody { left, .. } | StreamState::Lent { left, .. } => left,
            _ => 0,
        }
    }

    /// Lends the running hash out for the next `len` bytes of payload of the body begun last,
    /// which the caller hashes where they are (on another CPU, say) and gives back with
    /// [`Self::give_back`]; nothing else can be fed meanwhile.
    pub fn lend(&mut self, len: usize) -> Result<Xxh64> {
        let StreamState::InBody { left, pad } = self.state else {
            return Err(self.err(ErrorKind::Truncated));
        };
        if len > left - pad {
            return Err(self.err(ErrorKind::Truncated));
        }
        self.state = StreamState::Lent {
            left: left - len,
            pad,
        };
        self.offset += len as u64;
        Ok(self.hash)
    }

    /// Takes the lent hash back, advanced over the bytes it was lent for.
    pub fn give_back(&mut self, hash: Xxh64) -> Result<()> {
        let StreamState::Lent { left, pad } = self.state else {
            return Err(self.err(ErrorKind::Truncated));
        };
        self.hash = hash;
        self.state = StreamState::InBody { left, pad };
        Ok(())
    }

    /// Ends the body begun last, which must have been given whole.
    pub fn end_body(&mut self) -> Result<()> {
        match self.state {
            StreamState::InBody { left: 0, .. } => {
                self.state = StreamState::Body;
                self.records += 1;
                Ok(())
            }
            _ => Err(self.err(ErrorKind::Truncated)),
        }
    }
}

/// Reads a complete image held in memory, record by record.
///
/// Iteration yields each record after the header and before the trailer, or the first error, and
/// then stops. [`ImageReader::validate`] runs it to the end.
pub struct ImageReader<'a> {
    buf: &'a [u8],
    pos: usize,
    check: StreamValidator,
    failed: bool,
}

impl<'a> ImageReader<'a> {
    /// Checks the magic and the header record.
    pub fn new(buf: &'a [u8]) -> Result<Self> {
        let mut r = Self {
            buf,
            pos: 0,
            check: StreamValidator::new(),
            failed: false,
        };
        let Some(magic) = buf.get(..8).and_then(|m| <&[u8; 8]>::try_from(m).ok()) else {
            // Too short to hold the magic: a truncated image only if what is there could be
            // its start.
            let kind = if MAGIC.starts_with(buf) {
                ErrorKind::Truncated
            } else {
                ErrorKind::BadMagic
            };
            return Err(r.check.err(kind));
        };
        r.check.magic(magic)?;
        r.pos = 8;
        match r.next_record()? {
            Some(rec) if rec.kind == RecordKind::Header as u32 => Ok(r),
            _ => Err(r.check.err(ErrorKind::MissingHeader)),
        }
    }

    /// The validated header.
    pub fn header(&self) -> Header {
        // `new` only returns once the header record was accepted.
        self.check.header().copied().unwrap_or(Header {
            format_version: 0,
            arch: 0,
            flags: 0,
            page_size: 0,
            xstate_size: 0,
            xfeatures: 0,
            time_ns: 0,
            release: [0; RELEASE_LEN],
        })
    }

    /// The trailer, once iteration reached it.
    pub fn trailer(&self) -> Option<Trailer> {
        self.check.trailer().copied()
    }

    fn next_record(&mut self) -> Result<Option<Record<'a>>> {
        if self.check.is_complete() {
            if self.pos != self.buf.len() {
                return Err(self.check.err(ErrorKind::TrailingData));
            }
            return Ok(None);
        }
        let truncated = self.check.err(ErrorKind::Truncated);
        let hdr_bytes: &[u8; RECORD_HEADER_LEN] = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..RECORD_HEADER_LEN))
            .and_then(|h| h.try_into().ok())
            .ok_or(truncated)?;
        let hdr = self.check.record_header(hdr_bytes)?;
        let body_start = self.pos + RECORD_HEADER_LEN;
        let payload_end = body_start + hdr.payload_len();
        let pad_end = payload_end + hdr.padding_len();
        let payload = self.buf.get(body_start..payload_end).ok_or(truncated)?;
        let pad = self.buf.get(payload_end..pad_end).ok_or(truncated)?;
        let offset = self.check.record_body(&hdr, payload, pad)?;
        self.pos = pad_end;
        Ok(Some(Record {
            offset,
            kind: hdr.kind,
            payload,
        }))
    }

    /// Runs the reader to the end of a well-formed image and returns the trailer.
    pub fn validate(mut self) -> Result<Trailer> {
        for rec in &mut self {
            let rec = rec?;
            if rec.known_kind() == Some(RecordKind::Error) {
                return Err(FormatError {
                    offset: rec.offset,
                    kind: ErrorKind::CheckpointFailed,
                });
            }
        }
        self.trailer().ok_or(FormatError {
            offset: self.pos as u64,
            kind: ErrorKind::Truncated,
        })
    }
}

impl<'a> Iterator for ImageReader<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(Some(rec)) if rec.kind == RecordKind::Trailer as u32 => {
                // The trailer is reported through `trailer()`; what follows it must be nothing.
                match self.next_record() {
                    Ok(_) => None,
                    Err(e) => {
                        self.failed = true;
                        Some(Err(e))
                    }
                }
            }
            Ok(Some(rec)) => Some(Ok(rec)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Where an [`ImageWriter`] puts its bytes: a file in the kernel, a `Vec` or a fixed buffer on
/// the host.
pub trait Sink {
    /// The sink's own error.
    type Error;
    /// Writes all of `bytes` or fails.
    fn put(&mut self, bytes: &[u8]) -> core::result::Result<(), Self::Error>;
    /// Writes all of one record, given as groups of pieces, in order. A sink that can gather
    /// (a file in the kernel) writes large records without copying them into a buffer first.
    fn put_record(&mut self, groups: &[&[&[u8]]]) -> core::result::Result<(), Self::Error> {
        for piece in groups.iter().flat_map(|g| g.iter()) {
            self.put(piece)?;
        }
        Ok(())
    }
}

/// Hashes the body of a record on the side, for [`ImageWriter::record_split`]: given the running
/// hash before the body, it must give it back advanced over exactly the body.
pub trait BodyHasher {
    /// Starts hashing from `before` (it may run on another CPU while the sink copies).
    fn start(&mut self, before: Xxh64);
    /// Waits for the hash to be done and returns it.
    fn finish(&mut self) -> Xxh64;
}

/// Why writing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError<E> {
    /// The sink failed.
    Sink(E),
    /// A record would exceed [`MAX_RECORD_LEN`], or the stream more than 2^32-1 records.
    TooLarge,
}

/// Writes a well-formed image: magic and header on creation, framing and padding for every
/// record, the trailer with its CRC on [`ImageWriter::finish`].
pub struct ImageWriter<S: Sink> {
    sink: S,
    hash: Xxh64,
    offset: u64,
    records: u32,
}

const ZEROS: [u8; RECORD_ALIGN] = [0; RECORD_ALIGN];

impl<S: Sink> ImageWriter<S> {
    /// Writes the magic and the header record.
    pub fn new(sink: S, header: &Header) -> core::result::Result<Self, WriteError<S::Error>> {
        let mut w = Self {
            sink,
            hash: Xxh64::new(),
            offset: 0,
            records: 0,
        };
        w.raw(&MAGIC)?;
        w.record(RecordKind::Header as u32, &[&header.encode()])?;
        Ok(w)
    }

    fn raw(&mut self, bytes: &[u8]) -> core::result::Result<(), WriteError<S::Error>> {
        self.sink.put(bytes).map_err(WriteError::Sink)?;
        self.hash.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes one record whose payload is the concatenation of `parts`.
    pub fn record(
        &mut self,
        kind: u32,
        parts: &[&[u8]],
    ) -> core::result::Result<(), WriteError<S::Error>> {
        struct Inline<'a>(&'a [&'a [u8]], Xxh64);
        impl BodyHasher for Inline<'_> {
            fn start(&mut self, before: Xxh64) {
                self.1 = before;
                for p in self.0 {
                    self.1.update(p);
                }
            }
            fn finish(&mut self) -> Xxh64 {
                self.1
            }
        }
        self.record_split(kind, &[], parts, &mut Inline(parts, Xxh64::new()))
    }

    /// Writes one record whose payload is `head` then `body`, where `hasher` hashes `body`: it
    /// starts before the sink sees the record and finishes after, so that a large body is
    /// hashed on one CPU while another copies it into the stream. The body must not change
    /// meanwhile.
    pub fn record_split(
        &mut self,
        kind: u32,
        head: &[&[u8]],
        body: &[&[u8]],
        hasher: &mut impl BodyHasher,
    ) -> core::result::Result<(), WriteError<S::Error>> {
        let payload_len = head
            .iter()
            .chain(body.iter())
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(WriteError::TooLarge)?;
        let hdr = RecordHeader::for_payload(kind, payload_len).ok_or(WriteError::TooLarge)?;
        self.records = self.records.checked_add(1).ok_or(WriteError::TooLarge)?;
        let framing = hdr.encode();
        let pad = &ZEROS[..hdr.padding_len()];
        self.hash.update(&framing);
        for p in head {
            self.hash.update(p);
        }
        hasher.start(self.hash);
        let written = self.sink.put_record(&[&[&framing], head, body, &[pad]]);
        self.hash = hasher.finish();
        written.map_err(WriteError::Sink)?;
        self.hash.update(pad);
        self.offset += (RECORD_HEADER_LEN + payload_len + pad.len()) as u64;
        Ok(())
    }

    /// Records an ERROR: the image will be refused by restart, and readers show `reason`.
    pub fn error(&mut self, reason: &str) -> core::result::Result<(), WriteError<S::Error>> {
        let reason = if reason.is_empty() {
            "unknown error"
        } else {
            reason
        };
        self.record(RecordKind::Error as u32, &[reason.as_bytes()])
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The trailer that [`Self::finish`] would write now: the image's identity.
    pub fn trailer(&self) -> Trailer {
        Trailer {
            records: self.records,
            stream_len: self.offset,
            xxh64: self.hash.value(),
        }
    }

    /// Writes the trailer and hands back the sink.
    pub fn finish(mut self) -> core::result::Result<S, WriteError<S::Error>> {
        let t = self.trailer();
        self.record(RecordKind::Trailer as u32, &[&t.encode()])?;
        Ok(self.sink)
    }
}

/// A [`Sink`] over a fixed buffer, for tests without allocation (the KUnit suite).
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceSink<'a> {
    /// An empty sink writing into `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The buffer of a [`SliceSink`] is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferFull;

impl Sink for SliceSink<'_> {
    type Error = BufferFull;

    fn put(&mut self, bytes: &[u8]) -> core::result::Result<(), BufferFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(BufferFull)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(BufferFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Self-checks shared by the host unit tests and the in-kernel KUnit suite, so that both run the
/// very same parser against the very same cases. Each returns `Err` with a description of the
/// first case that went wrong.
pub mod selfcheck {
    use super::*;

    /// Size of the buffer a sample image needs.
    pub const SAMPLE_BUF: usize = 512;

    /// A header as a checkpoint of this kernel would write it.
    pub fn sample_header() -> Header {
        let mut h = Header {
            format_version: FORMAT_VERSION,
            arch: ARCH_X86_64,
            flags: 0,
            page_size: 4096,
            xstate_size: 2696,
            xfeatures: 0x2e7,
            time_ns: 1_764_000_000_000_000_000,
            release: [0; RELEASE_LEN],
        };
        h.set_release(b"7.3.4-cr");
        h
    }

    /// Writes a small image with a header, one optional record of an unknown kind with an
    /// unaligned payload, and the trailer. Returns its length.
    pub fn write_sample(buf: &mut [u8; SAMPLE_BUF]) -> core::result::Result<usize, &'static str> {
        let mut w = ImageWriter::new(SliceSink::new(buf), &sample_header())
            .map_err(|_| "writing the header failed")?;
        w.record(KIND_OPTIONAL | 0x7777, &[b"hello", b", world"])
            .map_err(|_| "writing a record failed")?;
        let sink = w.finish().map_err(|_| "writing the trailer failed")?;
        Ok(sink.len())
    }

    /// A written image reads back with the same header, records and trailer.
    pub fn roundtrip() -> core::result::Result<(), &'static str> {
        let mut buf = [0u8; SAMPLE_BUF];
        let len = write_sample(&mut buf)?;
        if len % RECORD_ALIGN != 0 {
            return Err("image length is not aligned");
        }
        let mut r = ImageReader::new(&buf[..len]).map_err(|_| "valid image rejected")?;
        if r.header() != sample_header() {
            return Err("header did not round-trip");
        }
        match r.next() {
            Some(Ok(rec))
                if rec.kind == KIND_OPTIONAL | 0x7777 && rec.payload == b"hello, world" => {}
            _ => return Err("record did not round-trip"),
        }
        if r.next().is_some() {
            return Err("reader went past the trailer");
        }
        match r.trailer() {
            Some(t) if t.records == 2 => Ok(()),
            _ => Err("trailer missing or wrong count"),
        }
    }

    /// Every proper prefix of a valid image is rejected.
    pub fn truncations() -> core::result::Result<(), &'static str> {
        let mut buf = [0u8; SAMPLE_BUF];
        let len = write_sample(&mut buf)?;
        for cut in 0..len {
            if ImageReader::new(&buf[..cut])
                .and_then(|r| r.validate())
                .is_ok()
            {
                return Err("a truncated image was accepted");
            }
        }
        Ok(())
    }

    /// Every single-bit flip of a valid image is rejected (the CRC, at least, catches it).
    pub fn bit_flips() -> core::result::Result<(), &'static str> {
        let mut buf = [0u8; SAMPLE_BUF];
        let len = write_sample(&mut buf)?;
        for byte in 0..len {
            for bit in 0..8 {
                buf[byte] ^= 1 << bit;
                let accepted = ImageReader::new(&buf[..len])
                    .and_then(|r| r.validate())
                    .is_ok();
                buf[byte] ^= 1 << bit;
                if accepted {
                    return Err("a corrupted image was accepted");
                }
            }
        }
        Ok(())
    }

    /// Known answers of XXH64 (seed 0), and split feeding equal to one-shot feeding across the
    /// 32-byte stripes.
    pub fn checksum_vectors() -> core::result::Result<(), &'static str> {
        let hash = |parts: &[&[u8]]| {
            let mut h = Xxh64::new();
            for p in parts {
                h.update(p);
            }
            h.value()
        };
        if hash(&[]) != 0xef46_db37_51d8_e999 {
            return Err("xxh64(\"\") is wrong");
        }
        if hash(&[b"abc"]) != 0x44bc_2cf5_ad77_0999 {
            return Err("xxh64(\"abc\") is wrong");
        }
        let mut data = [0u8; 100];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let whole = hash(&[&data]);
        for split in 0..data.len() {
            for split2 in split..data.len() {
                let (a, rest) = data.split_at(split);
                let (b, c) = rest.split_at(split2 - split);
                if hash(&[a, b, c]) != whole {
                    return Err("incremental xxh64 differs");
                }
            }
        }
        Ok(())
    }

    /// Objrefs must be defined densely in order and referenced only once defined.
    pub fn objrefs() -> core::result::Result<(), &'static str> {
        let mut w = ObjrefSpace::new();
        let mut r = ObjrefSpace::new();
        for _ in 0..3 {
            let id = w.allocate().ok_or("allocation failed")?;
            r.define(id).map_err(|_| "in-order definition rejected")?;
        }
        let ok = r.check_ref(1).is_ok() && r.check_ref(3).is_ok();
        let bad = r.check_ref(0).is_err()
            && r.check_ref(4).is_err()
            && r.define(3).is_err()
            && r.define(5).is_err();
        if ok && bad {
            Ok(())
        } else {
            Err("objref validation is wrong")
        }
    }

    /// A self-check: `Err` names the case that failed.
    pub type Check = fn() -> core::result::Result<(), &'static str>;

    /// Every self-check, in order.
    pub const ALL: [(&str, Check); 5] = [
        ("roundtrip", roundtrip),
        ("truncations", truncations),
        ("bit_flips", bit_flips),
        ("checksum_vectors", checksum_vectors),
        ("objrefs", objrefs),
    ];
}
