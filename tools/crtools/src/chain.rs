//! Incremental images: which image is another one's parent, and the memory a chain of them
//! restores.
//!
//! An incremental image starts with a PARENT record naming its parent by the parent's trailer
//! (length and checksum). Its KEEP records of address space `mm` mean "what the parent restores
//! in its address space whose MM has objref `mm`", or, after a precopy image, what that image
//! last copied there. Restart stages that memory, one sparse memfd per address space, and the
//! kernel reads the kept pages from it; a parent is itself staged from its own parent first.
//!
//! An address space that keeps pages from one parent space only, which no other one keeps
//! from, takes the parent's memfd over: its own pages are written over the parent's, and what
//! it neither writes nor keeps is punched out. A chain of N images is then staged with one
//! copy of its memory, not N.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crimage::format::{
    header_flags, RecordHeader, RecordKind, StreamValidator, Trailer, TreeEntry, TreeHeader,
    RECORD_HEADER_LEN,
};
use crimage::records::{self, PAGE_SIZE};

use crate::Fail;

/// Longest chain of parents followed: a loop of images naming each other ends here.
const CHAIN_MAX: usize = 64;

/// An image, as its trailer identifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Bytes before its trailer record.
    pub length: u64,
    /// Its trailer's checksum.
    pub checksum: u64,
}

/// What a PARENT record says.
#[derive(Clone, Debug)]
pub struct ParentRef {
    /// The parent's identity.
    pub identity: Identity,
    /// Where the checkpoint found it (may be empty, or stale).
    pub path: PathBuf,
}

impl ParentRef {
    /// From a PARENT record's payload.
    pub fn decode(payload: &[u8]) -> Result<Self, Fail> {
        let p = records::Parent::decode(payload).map_err(|e| failed!("invalid image: {e}"))?;
        Ok(Self {
            identity: Identity {
                length: p.rec.length,
                checksum: p.rec.checksum,
            },
            path: PathBuf::from(std::ffi::OsStr::from_bytes(p.path)),
        })
    }
}

/// The records of the images of a file, one after another, each checked as it is read, with
/// the whole stream's checks (length, checksum) at each trailer.
pub struct Records<S: Source> {
    source: S,
    check: StreamValidator,
    started: bool,
    /// Whether the image being read is a precopy image.
    pub precopy: bool,
}

/// One record: its kind and payload, borrowed from the reader until the next one.
pub struct Record<'a> {
    pub kind: u32,
    pub payload: &'a [u8],
}

/// Where records come from, a span of bytes at a time.
pub trait Source {
    /// The next `n` bytes; `None` at the end of the input, before any of them (never for `n`
    /// of 0); an error at an end inside them.
    fn next_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, Fail>;
}

/// A stream, read into one buffer that every record reuses.
pub struct Stream<R: Read> {
    input: R,
    buf: Vec<u8>,
}

impl<R: Read> Source for Stream<R> {
    fn next_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, Fail> {
        self.buf.resize(n, 0);
        Ok(read_all_or_none(&mut self.input, &mut self.buf)?.then_some(&self.buf[..]))
    }
}

/// A file mapped whole, its records read in place. Restart reads a gigabyte parent image to
/// check it and stage its pages: through a buffer, that is one copy more of every page, which
/// costs as much as the staging's own (the test VM reads a tmpfs file at about 400 MB/s).
pub struct Mapped {
    addr: *mut libc::c_void,
    len: usize,
    at: usize,
}

impl Mapped {
    /// `file` mapped whole, or `None` where it cannot be (empty, not a regular file, a file
    /// system without mmap).
    fn of(file: &File) -> Option<Self> {
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a new private read-only mapping of an open file, at an address the kernel
        // chooses; nothing else refers to it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        (addr != libc::MAP_FAILED).then_some(Self { addr, len, at: 0 })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes until drop. A file that shrinks under it
        // would raise SIGBUS, as it would for any reader of a mapped file: images are not
        // written while restart reads them.
        unsafe { std::slice::from_raw_parts(self.addr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of`, and no slice of it outlives `self`.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

impl Source for Mapped {
    fn next_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, Fail> {
        let at = self.at;
        if at == self.len && n > 0 {
            return Ok(None);
        }
        let end = at.checked_add(n).filter(|&e| e <= self.len);
        let Some(end) = end else {
            fail!("invalid image: it is truncated")
        };
        self.at = end;
        Ok(Some(&self.bytes()[at..end]))
    }
}

/// An image file's records: read in place where it can be mapped, else through a buffer.
pub enum FileSource {
    Mapped(Mapped),
    Stream(Stream<BufReader<File>>),
}

impl Source for FileSource {
    fn next_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, Fail> {
        match self {
            Self::Mapped(m) => m.next_bytes(n),
            Self::Stream(s) => s.next_bytes(n),
        }
    }
}

impl Records<FileSource> {
    /// The records of the file at `path`.
    pub fn open(path: &Path) -> Result<Self, Fail> {
        let file = File::open(path).map_err(|e| failed!("{}: {e}", path.display()))?;
        let source = match Mapped::of(&file) {
            Some(m) => FileSource::Mapped(m),
            None => FileSource::Stream(Stream::new(BufReader::with_capacity(1 << 20, file))),
        };
        Ok(Self::new(source))
    }
}

impl Records<Mapped> {
    /// The records of `file` mapped whole, or `None` where it cannot be mapped.
    pub fn mapped(file: &File) -> Option<Self> {
        Mapped::of(file).map(Self::new)
    }

    /// How many bytes of the file the records read so far span: after a trailer, where the
    /// next image starts.
    pub fn offset(&self) -> u64 {
        self.source.at as u64
    }
}

impl<R: Read> Stream<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            buf: Vec::new(),
        }
    }
}

impl<S: Source> Records<S> {
    pub fn new(source: S) -> Self {
        Self {
            source,
            check: StreamValidator::new(),
            started: false,
            precopy: false,
        }
    }

    /// The next record, `None` at the end of the file; a new image starts after a trailer.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, Fail> {
        let invalid = |e: &dyn std::fmt::Display| failed!("invalid image: {e}");
        if !self.started || self.check.is_complete() {
            let magic: [u8; 8] = match self.source.next_bytes(8)? {
                None if self.started => return Ok(None),
                None => fail!("invalid image: it is empty"),
                Some(m) => m
                    .try_into()
                    .map_err(|_| failed!("invalid image: it is truncated"))?,
            };
            self.check = StreamValidator::new();
            self.check.magic(&magic).map_err(|e| invalid(&e))?;
            self.started = true;
        }
        let truncated = || failed!("image is truncated");
        let hdr: [u8; RECORD_HEADER_LEN] = match self.source.next_bytes(RECORD_HEADER_LEN)? {
            Some(h) => h.try_into().map_err(|_| truncated())?,
            None => return Err(truncated()),
        };
        let h = self.check.record_header(&hdr).map_err(|e| invalid(&e))?;
        let body = match self.source.next_bytes(h.payload_len() + h.padding_len())? {
            Some(b) => b,
            None => return Err(truncated()),
        };
        let (payload, pad) = body.split_at(h.payload_len());
        self.check
            .record_body(&h, payload, pad)
            .map_err(|e| invalid(&e))?;
        if h.kind == RecordKind::Header as u32 {
            self.precopy = self
                .check
                .header()
                .is_some_and(|h| h.flags & header_flags::PRECOPY != 0);
        }
        if h.kind == RecordKind::Error as u32 {
            let why = crimage::format::decode_error_message(payload).unwrap_or("?");
            fail!("invalid image: the checkpoint failed while it wrote it: {why}");
        }
        Ok(Some(Record {
            kind: h.kind,
            payload,
        }))
    }

    /// Whether the image being read has ended: its trailer was read and checked.
    pub fn image_complete(&self) -> bool {
        self.started && self.check.is_complete()
    }

    /// The identity of the image whose trailer was read last.
    pub fn identity(&self) -> Option<Identity> {
        self.check.trailer().map(|t| Identity {
            length: t.stream_len,
            checksum: t.xxh64,
        })
    }
}

/// Reads the next record of `v`'s image into `body` (payload, then padding), validated; returns
/// its header.
pub fn read_record(
    input: &mut dyn Read,
    v: &mut StreamValidator,
    hdr: &mut [u8; RECORD_HEADER_LEN],
    body: &mut Vec<u8>,
) -> Result<RecordHeader, Fail> {
    let truncated = || failed!("image is truncated");
    let invalid = |e: &dyn std::fmt::Display| failed!("invalid image: {e}");
    input.read_exact(hdr).map_err(|_| truncated())?;
    let h = v.record_header(hdr).map_err(|e| invalid(&e))?;
    body.resize(h.payload_len() + h.padding_len(), 0);
    input.read_exact(body).map_err(|_| truncated())?;
    let (payload, pad) = body.split_at(h.payload_len());
    v.record_body(&h, payload, pad).map_err(|e| invalid(&e))?;
    Ok(h)
}

/// Fills `buf`, or returns false at a clean end of input.
fn read_all_or_none(input: &mut impl Read, buf: &mut [u8]) -> Result<bool, Fail> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => fail!("invalid image: it is truncated"),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => fail!("reading the image: {e}"),
        }
    }
    Ok(true)
}

/// The image that a file restores (after its precopy image, if any): its identity, and its
/// parent if it is incremental. Reads and checks the whole file.
pub fn identify(path: &Path) -> Result<(Identity, Option<ParentRef>), Fail> {
    let mut recs = Records::open(path)?;
    let (mut identity, mut parent) = (None, None);
    let mut last_kind = 0;
    while let Some(r) = recs.next_record()? {
        let kind = r.kind;
        if kind == RecordKind::Parent as u32 && last_kind == RecordKind::Header as u32 {
            parent = Some(ParentRef::decode(r.payload)?);
        }
        if kind == RecordKind::Trailer as u32 && !recs.precopy {
            identity = recs.identity();
        }
        last_kind = kind;
    }
    let identity = identity.ok_or(failed!(
        "{}: no complete image to restart in it",
        path.display()
    ))?;
    Ok((identity, parent))
}

/// The identity a file's last trailer claims, read from its end alone: what names an image to
/// the module (which holds no tracking for any other), and what picks a parent out of a
/// directory before it is read whole. A TRAILER record is the last 32 bytes of an image.
pub fn claimed_identity(path: &Path) -> Result<Identity, Fail> {
    let file = File::open(path).map_err(|e| failed!("{}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| failed!("{}: {e}", path.display()))?
        .len();
    let not_one = || failed!("{}: does not end like an image", path.display());
    const TAIL: usize = RECORD_HEADER_LEN + Trailer::LEN;
    let mut tail = [0u8; TAIL];
    if len < TAIL as u64 + 8 {
        return Err(not_one());
    }
    file.read_exact_at(&mut tail, len - TAIL as u64)
        .map_err(|e| failed!("{}: {e}", path.display()))?;
    let (hdr, payload) = tail.split_at(RECORD_HEADER_LEN);
    let kind = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let rec_len = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
    if kind != RecordKind::Trailer as u32 || rec_len != TAIL {
        return Err(not_one());
    }
    let t = Trailer::decode(payload).map_err(|_| not_one())?;
    Ok(Identity {
        length: t.stream_len,
        checksum: t.xxh64,
    })
}

/// Where `parent` is: the path it recorded, if that file claims to be it; else a file in one of
/// `dirs` that does. Only the claim is checked here: a file with one byte changed keeps its
/// trailer, and is refused when it is read whole ([`materialize`]).
pub fn find(parent: &ParentRef, dirs: &[PathBuf]) -> Result<PathBuf, Fail> {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if !parent.path.as_os_str().is_empty() {
        candidates.push(parent.path.clone());
    }
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| failed!("{}: {e}", dir.display()))?;
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        candidates.extend(names.into_iter().filter(|p| p.is_file()));
    }
    for c in candidates {
        if !c.is_file() {
            tried.push(format!("{}: missing", c.display()));
            continue;
        }
        match claimed_identity(&c) {
            Ok(id) if id == parent.identity => return Ok(c),
            Ok(_) => tried.push(format!("{}: another image", c.display())),
            Err(e) => tried.push(e.message().to_string()),
        }
    }
    fail!(
        "the parent image (length {}, checksum {:016x}) is not found{}{}",
        parent.identity.length,
        parent.identity.checksum,
        if tried.is_empty() { "" } else { ": " },
        tried.join("; ")
    )
}

/// The memory of each address space, by id: what a sparse memfd holds at offset A is the page
/// at address A.
pub type Spaces = Vec<(u64, File)>;

/// A new anonymous file, closed on exec.
pub fn memfd(name: &std::ffi::CStr) -> Result<File, Fail> {
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        fail!("memfd_create: {}", io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The space `id` of `spaces`, made empty if it is not there yet.
fn space(spaces: &mut Spaces, id: u64) -> Result<&File, Fail> {
    let at = match spaces.iter().position(|(s, _)| *s == id) {
        Some(at) => at,
        None => {
            spaces.push((id, memfd(c"cr-staged")?));
            spaces.len() - 1
        }
    };
    Ok(&spaces[at].1)
}

/// Lays a PRECOPY record over `spaces`.
pub fn apply_precopy(spaces: &mut Spaces, payload: &[u8]) -> Result<(), Fail> {
    let pre = records::Precopy::decode(payload).map_err(|e| failed!("invalid image: {e}"))?;
    let file = space(spaces, pre.mm)?;
    let mut i = 0;
    for (first, n) in pre.pages.list().runs() {
        let data = &pre.pages.data()[i * PAGE_SIZE..(i + n) * PAGE_SIZE];
        file.write_all_at(data, first)
            .map_err(|e| failed!("staging the precopied pages: {e}"))?;
        i += n;
    }
    Ok(())
}

/// Whether `file` holds data (no hole) in `[at, at + len)`.
fn holds(file: &File, at: u64, len: u64) -> bool {
    // SAFETY: lseek on a descriptor we own.
    let hole = unsafe { libc::lseek(file.as_raw_fd(), at as libc::off_t, libc::SEEK_HOLE) };
    hole >= 0 && hole as u64 >= at + len
}

fn lacks() -> Fail {
    failed!("the images before this one lack pages that it keeps")
}

/// Copies the runs of a KEEP record from the space it names in `base` into `into`.
fn apply_keep(base: &Spaces, into: &File, payload: &[u8]) -> Result<(), Fail> {
    let keep = records::Keep::decode(payload).map_err(|e| failed!("invalid image: {e}"))?;
    let from = base
        .iter()
        .find(|(id, _)| *id == keep.head.mm)
        .map(|(_, f)| f)
        .ok_or_else(lacks)?;
    let mut buf = vec![0u8; 256 * PAGE_SIZE];
    for (first, pages) in keep.runs() {
        let len = pages * PAGE_SIZE as u64;
        if !holds(from, first, len) {
            return Err(lacks());
        }
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            from.read_exact_at(&mut buf[..n], first + done)
                .and_then(|()| into.write_all_at(&buf[..n], first + done))
                .map_err(|e| failed!("staging the parent's pages: {e}"))?;
            done += n as u64;
        }
    }
    Ok(())
}

/// The parent spaces the KEEP records of each address space of the file in `path` name, in the
/// order of its MM records: a look at the record headers alone, before the file is read and
/// checked whole, so that each address space knows at its MM record whether it can take a
/// parent's memfd over. Nothing is taken over from a file this look cannot make sense of:
/// reading it whole says what is wrong with it.
fn keep_sources(path: &Path) -> Vec<Vec<u64>> {
    scan_keep_sources(path).unwrap_or_default()
}

fn scan_keep_sources(path: &Path) -> Result<Vec<Vec<u64>>, Fail> {
    let file = File::open(path).map_err(|e| failed!("{}: {e}", path.display()))?;
    let mut input = BufReader::with_capacity(1 << 16, file);
    let invalid = |e: &dyn std::fmt::Display| failed!("invalid image: {e}");
    let mut sources: Vec<Vec<u64>> = Vec::new();
    let mut in_space = false;
    let mut magic = [0u8; 8];
    while read_all_or_none(&mut input, &mut magic)? {
        loop {
            let mut hdr = [0u8; RECORD_HEADER_LEN];
            input
                .read_exact(&mut hdr)
                .map_err(|_| failed!("image is truncated"))?;
            let h = RecordHeader::decode(&hdr).map_err(|e| invalid(&e))?;
            let mut body = h.payload_len() + h.padding_len();
            match RecordKind::from_u32(h.kind) {
                Some(RecordKind::Mm) => {
                    sources.push(Vec::new());
                    in_space = true;
                }
                Some(RecordKind::Task) => in_space = false,
                Some(RecordKind::Keep) if in_space => {
                    let mut payload = vec![0u8; h.payload_len()];
                    input
                        .read_exact(&mut payload)
                        .map_err(|_| failed!("image is truncated"))?;
                    body -= payload.len();
                    let keep = records::Keep::decode(&payload).map_err(|e| invalid(&e))?;
                    if let Some(named) = sources.last_mut() {
                        if !named.contains(&keep.head.mm) {
                            named.push(keep.head.mm);
                        }
                    }
                }
                _ => {}
            }
            input
                .seek_relative(body as i64)
                .map_err(|e| failed!("reading the image: {e}"))?;
            if h.kind == RecordKind::Trailer as u32 {
                break;
            }
        }
    }
    Ok(sources)
}

/// The memfd of one address space of the image being staged.
struct Staging {
    file: File,
    /// For a memfd taken over from the parent: the ranges this image writes or keeps; the rest
    /// is the parent's and is punched out at the end. They come in the order of the records,
    /// which is not the order of addresses: a KEEP record lists the kept runs of one walk of
    /// the page tables, and the PAGES record after it the written pages between them.
    covered: Option<Vec<(u64, u64)>>,
}

impl Staging {
    fn cover(&mut self, start: u64, end: u64) {
        let Some(covered) = &mut self.covered else {
            return;
        };
        match covered.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => covered.push((start, end)),
        }
    }

    /// Punches out what the parent had that this image does not hold.
    fn finish(&mut self) -> Result<(), Fail> {
        let Some(mut covered) = self.covered.take() else {
            return Ok(());
        };
        covered.sort_unstable();
        let size = self
            .file
            .metadata()
            .map_err(|e| failed!("staging: {e}"))?
            .len();
        let mut at = 0;
        for (start, end) in covered.into_iter().chain([(size, size)]) {
            if start > at {
                punch(&self.file, at, start - at)?;
            }
            at = at.max(end);
        }
        Ok(())
    }
}

/// Frees `[at, at + len)` of `file`.
fn punch(file: &File, at: u64, len: u64) -> Result<(), Fail> {
    // SAFETY: fallocate on a descriptor we own.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            at as libc::off_t,
            len as libc::off_t,
        )
    };
    if r != 0 {
        fail!(
            "staging: punching out the parent's pages: {}",
            io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The memory the image in `path` restores, by its MMs' objrefs; `dirs` are where to look for
/// its parents.
pub fn materialize(path: &Path, dirs: &[PathBuf]) -> Result<Spaces, Fail> {
    materialize_at(path, None, dirs, 0)
}

/// [`materialize`], for an image that must be the one `expected` identifies, whole.
fn materialize_at(
    path: &Path,
    expected: Option<Identity>,
    dirs: &[PathBuf],
    depth: usize,
) -> Result<Spaces, Fail> {
    if depth >= CHAIN_MAX {
        fail!("a chain of more than {CHAIN_MAX} images");
    }
    let sources = keep_sources(path);
    let mut recs = Records::open(path)?;
    let mut base: Spaces = Vec::new();
    let mut out: Vec<(u64, Staging)> = Vec::new();
    let mut last_kind = 0;
    let mut parent_seen = false;
    // The MMs' objrefs in the order their sections define them.
    let mut mm_refs: Vec<u32> = Vec::new();
    let mut next_mm = 0;
    // The space of the current MM part, and whether PAGES now are its addresses.
    let mut current: Option<usize> = None;
    let mut in_area = false;
    while let Some(r) = recs.next_record()? {
        let kind = RecordKind::from_u32(r.kind);
        match kind {
            Some(RecordKind::Parent) if last_kind == RecordKind::Header as u32 => {
                let parent = ParentRef::decode(r.payload)?;
                // A precopy image and the image after it name the same parent.
                if !parent_seen {
                    let found = find(&parent, dirs)?;
                    base = materialize_at(&found, Some(parent.identity), dirs, depth + 1)
                        .map_err(|e| failed!("{}: {}", found.display(), e.message()))?;
                    parent_seen = true;
                }
            }
            Some(RecordKind::Precopy) => apply_precopy(&mut base, r.payload)?,
            Some(RecordKind::Tree) => {
                let (_, rest) = crimage::format::split_fixed(
                    RecordKind::Tree,
                    r.payload,
                    TreeHeader::LEN,
                    TreeHeader::decode,
                )
                .map_err(|e| failed!("invalid image: {e}"))?;
                for e in rest
                    .chunks_exact(TreeEntry::LEN)
                    .filter_map(TreeEntry::decode)
                {
                    if !e.is_zombie() && e.mm_ref != 0 && !mm_refs.contains(&e.mm_ref) {
                        mm_refs.push(e.mm_ref);
                    }
                }
            }
            Some(RecordKind::Mm) => {
                let Some(&objref) = mm_refs.get(next_mm) else {
                    fail!("invalid image: more address spaces than its tree has");
                };
                if let Some(at) = current {
                    out[at].1.finish()?;
                }
                let named = sources.get(next_mm).map_or(&[][..], |s| &s[..]);
                next_mm += 1;
                let only = match named {
                    [one] if sources.iter().filter(|s| s.contains(one)).count() == 1 => {
                        base.iter().position(|(id, _)| id == one)
                    }
                    _ => None,
                };
                let staging = match only {
                    Some(at) => Staging {
                        file: base.remove(at).1,
                        covered: Some(Vec::new()),
                    },
                    None => Staging {
                        file: memfd(c"cr-staged")?,
                        covered: None,
                    },
                };
                out.push((u64::from(objref), staging));
                current = Some(out.len() - 1);
                in_area = false;
            }
            Some(RecordKind::Vma) => {
                let v =
                    records::Vma::decode(r.payload).map_err(|e| failed!("invalid image: {e}"))?;
                in_area = v.has_pages();
            }
            Some(RecordKind::Shmem) => in_area = false,
            Some(RecordKind::Pages) if in_area => {
                let Some(at) = current else {
                    fail!("invalid image: pages outside an address space")
                };
                let pages =
                    records::Pages::decode(r.payload).map_err(|e| failed!("invalid image: {e}"))?;
                let staging = &mut out[at].1;
                let mut i = 0;
                for (first, n) in pages.list().runs() {
                    let data = &pages.data()[i * PAGE_SIZE..(i + n) * PAGE_SIZE];
                    staging
                        .file
                        .write_all_at(data, first)
                        .map_err(|e| failed!("staging the parent's pages: {e}"))?;
                    staging.cover(first, first + data.len() as u64);
                    i += n;
                }
            }
            Some(RecordKind::Keep) => {
                let Some(at) = current else {
                    fail!("invalid image: kept pages outside an address space")
                };
                let staging = &mut out[at].1;
                if staging.covered.is_some() {
                    // The parent's pages are where they are: only checked to be there.
                    let keep = records::Keep::decode(r.payload)
                        .map_err(|e| failed!("invalid image: {e}"))?;
                    for (first, pages) in keep.runs() {
                        let end = first + pages * PAGE_SIZE as u64;
                        if !holds(&staging.file, first, end - first) {
                            return Err(lacks());
                        }
                        staging.cover(first, end);
                    }
                } else {
                    apply_keep(&base, &staging.file, r.payload)?;
                }
            }
            // Another task's section: its records until the next MM are not memory.
            Some(RecordKind::Task) => {
                if let Some(at) = current.take() {
                    out[at].1.finish()?;
                }
                in_area = false;
            }
            _ => {}
        }
        last_kind = r.kind;
    }
    match (recs.identity(), expected) {
        (None, _) => fail!("{}: the image is incomplete", path.display()),
        (Some(id), Some(want)) if id != want => fail!(
            "the parent image (length {}, checksum {:016x}) is not found: {} is another image",
            want.length,
            want.checksum,
            path.display()
        ),
        _ => {
            if let Some(at) = current {
                out[at].1.finish()?;
            }
            Ok(out.into_iter().map(|(id, s)| (id, s.file)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crimage::format::{
        selfcheck, vma_kind, ImageWriter, KeepHeader, PagesHeader, ParentRecord, VmaRecord,
    };
    use crimage::VecSink;
    use std::io::Write;

    const AREA: u64 = 0x10000;

    /// An image of one task with one anonymous area, whose `body` writes the area's pages;
    /// incremental to `parent` if given.
    fn image(
        parent: Option<(&Path, Identity)>,
        body: impl Fn(&mut ImageWriter<VecSink>),
    ) -> Vec<u8> {
        let mut w = ImageWriter::new(VecSink(Vec::new()), &selfcheck::sample_header()).unwrap();
        if let Some((path, id)) = parent {
            let path = path.as_os_str().as_bytes();
            let rec = ParentRecord {
                length: id.length,
                checksum: id.checksum,
                path_len: path.len() as u32,
                reserved: 0,
            };
            w.record(RecordKind::Parent as u32, &[&rec.encode(), path])
                .unwrap();
        }
        let head = TreeHeader { count: 1, flags: 0 };
        let entry = TreeEntry {
            pid: 100,
            tgid: 100,
            mm_ref: 1,
            ..TreeEntry::default()
        };
        w.record(RecordKind::Tree as u32, &[&head.encode(), &entry.encode()])
            .unwrap();
        w.record(RecordKind::Task as u32, &[&[0u8; 8]]).unwrap();
        w.record(RecordKind::Mm as u32, &[&[0u8; 8]]).unwrap();
        let vma = VmaRecord {
            start: AREA,
            end: AREA + 4 * PAGE_SIZE as u64,
            vm_flags: 0x3,
            kind: vma_kind::ANON,
            ..VmaRecord::default()
        };
        w.record(RecordKind::Vma as u32, &[&vma.encode()]).unwrap();
        body(&mut w);
        w.finish().unwrap().0
    }

    fn pages(w: &mut ImageWriter<VecSink>, at: u64, fill: u8) {
        let head = PagesHeader {
            count: 1,
            reserved: 0,
        };
        let page = vec![fill; PAGE_SIZE];
        w.record(
            RecordKind::Pages as u32,
            &[&head.encode(), &at.to_le_bytes(), &page],
        )
        .unwrap();
    }

    fn keep(w: &mut ImageWriter<VecSink>, at: u64, n: u64) {
        let head = KeepHeader {
            mm: 1,
            count: 1,
            reserved: 0,
        };
        w.record(
            RecordKind::Keep as u32,
            &[&head.encode(), &at.to_le_bytes(), &n.to_le_bytes()],
        )
        .unwrap();
    }

    fn page_at(f: &File, at: u64) -> Vec<u8> {
        let mut buf = vec![0u8; PAGE_SIZE];
        f.read_exact_at(&mut buf, at).unwrap();
        buf
    }

    /// Writes at `path` a whole image whose three pages hold 1, 2 and 3; identifies it.
    fn whole_image_of_three_pages(path: &Path) -> (Identity, Option<ParentRef>) {
        let p = PAGE_SIZE as u64;
        let bytes = image(None, |w| {
            pages(w, AREA, 1);
            pages(w, AREA + p, 2);
            pages(w, AREA + 2 * p, 3);
        });
        std::fs::write(path, bytes).unwrap();
        identify(path).unwrap()
    }

    #[test]
    fn a_chain_restores_each_page_from_the_image_that_last_wrote_it() {
        let dir = std::env::temp_dir().join(format!("cr-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a.img"), dir.join("b.img"), dir.join("c.img"));
        let p = PAGE_SIZE as u64;
        let (id_a, none) = whole_image_of_three_pages(&a);
        assert!(none.is_none());
        // b keeps the first two pages, rewrites the third.
        std::fs::write(
            &b,
            image(Some((&a, id_a)), |w| {
                keep(w, AREA, 2);
                pages(w, AREA + 2 * p, 4);
            }),
        )
        .unwrap();
        let (id_b, parent) = identify(&b).unwrap();
        assert_eq!(parent.unwrap().identity, id_a);
        // c keeps the second and third, rewrites the first, adds a fourth: its KEEP record
        // comes first, as the kernel writes them, with the pages written around its runs after.
        std::fs::write(
            &c,
            image(Some((&b, id_b)), |w| {
                keep(w, AREA + p, 2);
                pages(w, AREA, 5);
                pages(w, AREA + 3 * p, 6);
            }),
        )
        .unwrap();
        let spaces = materialize(&c, &[]).unwrap();
        assert_eq!(spaces.len(), 1);
        let (id, f) = &spaces[0];
        assert_eq!(*id, 1);
        for (i, want) in [5u8, 2, 4, 6].iter().enumerate() {
            assert_eq!(page_at(f, AREA + i as u64 * p), vec![*want; PAGE_SIZE]);
        }

        // Moved: found in a directory, and only there.
        let moved = dir.join("moved");
        std::fs::create_dir_all(&moved).unwrap();
        std::fs::rename(&a, moved.join("a.img")).unwrap();
        let err = materialize(&c, &[]).unwrap_err();
        assert!(
            err.message().contains("a.img: missing"),
            "{}",
            err.message()
        );
        assert!(materialize(&c, std::slice::from_ref(&moved)).is_ok());

        // One byte changed: not the parent any more.
        let mut bytes = std::fs::read(moved.join("a.img")).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        std::fs::File::create(moved.join("a.img"))
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let err = materialize(&c, std::slice::from_ref(&moved)).unwrap_err();
        assert!(
            err.message().contains("checksum mismatch"),
            "{}",
            err.message()
        );

        // Another image in its place: not the parent either.
        std::fs::copy(&c, moved.join("a.img")).unwrap();
        let err = materialize(&c, &[moved]).unwrap_err();
        assert!(
            err.message().contains("a.img: another image"),
            "{}",
            err.message()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every record of `recs`, as (kind, payload), or the first error's message.
    fn all_records<S: Source>(mut recs: Records<S>) -> Result<Vec<(u32, Vec<u8>)>, String> {
        let mut all = Vec::new();
        loop {
            match recs.next_record() {
                Ok(Some(r)) => all.push((r.kind, r.payload.to_vec())),
                Ok(None) => return Ok(all),
                Err(e) => return Err(e.message().to_string()),
            }
        }
    }

    #[test]
    fn a_mapped_image_reads_as_the_same_image_streamed() {
        let dir = std::env::temp_dir().join(format!("cr-chain-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.img");
        whole_image_of_three_pages(&a);
        let bytes = std::fs::read(&a).unwrap();
        let streamed = |b: &[u8]| all_records(Records::new(Stream::new(b)));
        let mapped = all_records(Records::open(&a).unwrap());
        assert!(matches!(
            Records::open(&a).unwrap().source,
            FileSource::Mapped(_)
        ));
        assert_eq!(mapped, streamed(&bytes));
        assert!(mapped.as_ref().unwrap().len() > 3);

        // Cut inside a record, at a record's end, and to nothing: the same refusal either way.
        for cut in [bytes.len() - 5, bytes.len() - 32, 8, 3, 0] {
            std::fs::write(&a, &bytes[..cut]).unwrap();
            let from_file = all_records(Records::open(&a).unwrap());
            let from_stream = streamed(&bytes[..cut]);
            assert!(from_file.is_err(), "cut at {cut}: {from_file:?}");
            assert!(from_stream.is_err(), "cut at {cut}");
        }
        std::fs::write(&a, b"").unwrap();
        let err = all_records(Records::open(&a).unwrap()).unwrap_err();
        assert!(err.contains("it is empty"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_page_dropped_in_the_middle_of_a_chain_cannot_be_kept_after() {
        let dir = std::env::temp_dir().join(format!("cr-chain-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a.img"), dir.join("b.img"), dir.join("c.img"));
        let p = PAGE_SIZE as u64;
        let (id_a, _) = whole_image_of_three_pages(&a);
        // b takes a's staged memory over, and no longer holds its last page.
        std::fs::write(&b, image(Some((&a, id_a)), |w| keep(w, AREA, 2))).unwrap();
        let (id_b, _) = identify(&b).unwrap();
        let spaces = materialize(&b, &[]).unwrap();
        assert_eq!(page_at(&spaces[0].1, AREA + p), vec![2; PAGE_SIZE]);
        assert!(!holds(&spaces[0].1, AREA + 2 * p, p));
        std::fs::write(&c, image(Some((&b, id_b)), |w| keep(w, AREA, 3))).unwrap();
        let err = materialize(&c, &[]).unwrap_err();
        assert!(err.message().contains("lack pages"), "{}", err.message());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_keep_of_pages_the_parent_lacks_is_refused() {
        let dir = std::env::temp_dir().join(format!("cr-chain-lacks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.img"), dir.join("b.img"));
        std::fs::write(&a, image(None, |w| pages(w, AREA, 1))).unwrap();
        let (id_a, _) = identify(&a).unwrap();
        std::fs::write(&b, image(Some((&a, id_a)), |w| keep(w, AREA, 2))).unwrap();
        let err = materialize(&b, &[]).unwrap_err();
        assert!(err.message().contains("lack pages"), "{}", err.message());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
