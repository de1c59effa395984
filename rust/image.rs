// SPDX-License-Identifier: GPL-2.0

//! Image streams and the log: the glue between `format.rs` and kernel files.

use core::fmt::{self, Write as _};

use kernel::{
    fs::{file::LocalFile, File},
    new_spinlock,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc, Completion, SpinLock,
    },
    time::{ClockSource, RealTime},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

use crate::error::{CrError, CrResult, Line};
use crate::format::{
    BodyHasher, ErrorKind, ImageWriter, RecordHeader, RecordKind, Sink, StreamValidator, Xxh64,
    MAX_RECORD_LEN, RECORD_HEADER_LEN,
};
use crate::format::{Header, Trailer, ARCH_X86_64, FORMAT_VERSION, PAGES_PER_RECORD, RELEASE_LEN};
use crate::records::PageList;
use crate::records::PAGE_SIZE;
use crate::shim::{current, FileExt, Gather, OwnPages};

/// Takes a reference to the file behind descriptor `fd` of the caller.
pub(crate) fn file_of_fd(fd: i32) -> Result<ARef<File>> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let f = LocalFile::fget(fd).map_err(|_| EBADF)?;
    // SAFETY: the caller is inside an ioctl of /dev/cr, not inside a read, write or lseek of
    // this descriptor, so it holds no `fdget_pos` of the file without its position lock.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(f) })
}

/// Where reasons for failures go: the caller's logfd, or nowhere for -1.
pub(crate) struct Log(Option<ARef<File>>);

impl Log {
    /// The log behind `logfd`; -1 means none.
    pub(crate) fn open(logfd: i32) -> Result<Self> {
        if logfd == -1 {
            return Ok(Self(None));
        }
        Ok(Self(Some(file_of_fd(logfd)?)))
    }

    /// Writes one line, prefixed with "cr: ", truncated to 255 bytes. A log that cannot be
    /// written does not change the outcome of the operation.
    pub(crate) fn line(&self, args: fmt::Arguments<'_>) {
        let mut line = LineBuf::default();
        let _ = line.write_str("cr: ");
        let _ = line.write_fmt(args);
        line.finish();
        if let Some(f) = &self.0 {
            let _ = f.write_all(line.as_bytes());
        }
        pr_info!("{}", core::str::from_utf8(line.as_bytes()).unwrap_or("?\n"));
    }

    /// Writes one line as it is, without the prefix ("cr: stats: ..." brings its own).
    pub(crate) fn raw(&self, args: fmt::Arguments<'_>) {
        let mut line = LineBuf::default();
        let _ = line.write_fmt(args);
        line.finish();
        if let Some(f) = &self.0 {
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// Reports `error` of operation `op` (on `pid`, for a checkpoint).
    pub(crate) fn error(&self, op: &'static str, pid: Option<i32>, error: &CrError) {
        self.line(format_args!("{}", Line { op, pid, error }));
    }
}

/// A fixed line buffer that truncates instead of failing.
struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }
}

impl LineBuf {
    fn finish(&mut self) {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// How far the writing of an image has come, for `CR_IOC_PROGRESS`: the bytes written, and about
/// how many there will be.
pub(crate) struct Progress {
    done: Atomic<u64>,
    total: u64,
}

impl Progress {
    pub(crate) fn new(total: u64) -> Self {
        Self {
            done: Atomic::new(0),
            total,
        }
    }

    /// The figures now (the estimate never below what is done).
    pub(crate) fn now(&self) -> crate::uapi::Progress {
        let done = self.done.load(Relaxed);
        crate::uapi::Progress {
            done,
            total: self.total.max(done),
        }
    }
}

/// Buffers small records and writes them to the image file in large pieces; writes a large
/// record (pages) straight from where its pieces are, in one gathered write.
pub(crate) struct FileSink {
    file: ARef<File>,
    buf: KVVec<u8>,
    gather: Gather,
    /// Bytes handed to the file so far.
    written: u64,
    /// Where a caller's other thread can see `written` (`CR_IOC_PROGRESS`).
    progress: Option<Arc<Progress>>,
}

const SINK_BUFFER: usize = 256 << 10;
/// Records at least this large skip the buffer.
const GATHER_FROM: usize = 64 << 10;

impl FileSink {
    pub(crate) fn new(file: ARef<File>, progress: Option<Arc<Progress>>) -> Result<Self> {
        Ok(Self {
            file,
            buf: KVVec::with_capacity(SINK_BUFFER, GFP_KERNEL)?,
            gather: Gather::default(),
            written: 0,
            progress,
        })
    }

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        if let Some(p) = &self.progress {
            p.done.store(self.written, Relaxed);
        }
    }

    /// Bytes of image so far, buffered or written.
    pub(crate) fn written(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&mut self) -> Result {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.wrote(self.buf.len());
            self.buf.clear();
        }
        Ok(())
    }
}

impl Sink for FileSink {
    type Error = Error;

    fn put(&mut self, bytes: &[u8]) -> Result {
        if self.buf.len() + bytes.len() > SINK_BUFFER {
            self.flush()?;
        }
        if bytes.len() >= SINK_BUFFER {
            self.file.write_all(bytes)?;
            self.wrote(bytes.len());
            return Ok(());
        }
        self.buf.extend_from_slice(bytes, GFP_KERNEL)?;
        Ok(())
    }

    fn put_record(&mut self, groups: &[&[&[u8]]]) -> Result {
        let len: usize = groups.iter().flat_map(|g| g.iter()).map(|p| p.len()).sum();
        if len < GATHER_FROM {
            for piece in groups.iter().flat_map(|g| g.iter()) {
                self.put(piece)?;
            }
            return Ok(());
        }
        self.flush()?;
        self.file.write_gathered(groups, &mut self.gather)?;
        self.wrote(len);
        Ok(())
    }
}

/// The image being written by a checkpoint.
pub(crate) type ImageOut = ImageWriter<FileSink>;

/// Ends an image after its records were written (`written`): with its trailer, flushed, and
/// returns its size and trailer; or, after a failure, marked incomplete with an ERROR record,
/// so that no reader mistakes it for a good one, and returns the failure.
pub(crate) fn close(mut out: ImageOut, written: CrResult) -> CrResult<(u64, Trailer)> {
    match written {
        Ok(()) => {
            let trailer = out.trailer();
            let mut sink = out.finish()?;
            let bytes = sink.written();
            sink.flush()
                .map_err(|e| CrError::new(e, "writing the image failed"))?;
            Ok((bytes, trailer))
        }
        Err(e) => {
            if out.error(e.reason()).is_ok() {
                if let Ok(mut sink) = out.finish() {
                    let _ = sink.flush();
                }
            }
            Err(e)
        }
    }
}

/// Hashes a record's pages on another CPU while this one copies them into the stream: the hash
/// and the copy each read every byte once, and run about as fast as each other.
///
/// The pages must not change, nor go, until [`BodyHasher::finish`] returned, which the writer
/// always calls (and `Drop` waits too).
pub(crate) struct SideHasher<'a> {
    pages: &'a [&'a [u8]],
    job: Option<Arc<HashJob>>,
    /// The hash, when it was made here after all (no memory for a job).
    inline: Xxh64,
}

impl<'a> SideHasher<'a> {
    pub(crate) fn new(pages: &'a [&'a [u8]]) -> Self {
        Self {
            pages,
            job: None,
            inline: Xxh64::new(),
        }
    }

    fn wait(&mut self) -> Option<Xxh64> {
        Some(self.job.take()?.wait())
    }
}

impl BodyHasher for SideHasher<'_> {
    fn start(&mut self, before: Xxh64) {
        if let Ok(job) = HashJob::start(self.pages.iter().copied(), before) {
            self.job = Some(job);
            return;
        }
        self.inline = before;
        for p in self.pages {
            self.inline.update(p);
        }
    }

    fn finish(&mut self) -> Xxh64 {
        self.wait().unwrap_or(self.inline)
    }
}

impl Drop for SideHasher<'_> {
    fn drop(&mut self) {
        self.wait();
    }
}

/// `system_dfl_wq`, the unbound queue that replaces the deprecated `system_unbound_wq` (the
/// kernel crate has no accessor for it yet).
pub(crate) fn default_queue() -> &'static workqueue::Queue {
    // SAFETY: `system_dfl_wq` is a C global, set up at boot and never freed.
    unsafe { workqueue::Queue::from_raw(kernel::bindings::system_dfl_wq) }
}

/// The work of a [`SideHasher`]: where the pages are, and the hash before and after them.
#[pin_data]
pub(crate) struct HashJob {
    #[pin]
    work: Work<HashJob>,
    #[pin]
    done: Completion,
    #[pin]
    state: SpinLock<Xxh64>,
    /// Address and length of each page, valid until `done` (the owner waits for it).
    pieces: KVec<(usize, usize)>,
}

impl_has_work! {
    impl HasWork<Self> for HashJob { self.work }
}

impl HashJob {
    /// Starts hashing `pages` from `before` on another CPU. The pages must stay as they are,
    /// and where they are, until [`Self::wait`] returned.
    fn start<'p>(pages: impl Iterator<Item = &'p [u8]>, before: Xxh64) -> Result<Arc<Self>> {
        let mut pieces = KVec::new();
        for p in pages {
            pieces.push((p.as_ptr() as usize, p.len()), GFP_KERNEL)?;
        }
        let job = Arc::pin_init(
            pin_init!(Self {
                work <- new_work!("cr::HashJob::work"),
                done <- Completion::new(),
                state <- new_spinlock!(before, "cr::HashJob::state"),
                pieces,
            }),
            GFP_KERNEL,
        )?;
        default_queue().enqueue(job.clone()).map_err(|_| EBUSY)?;
        Ok(job)
    }

    /// Waits for the hash, and returns it.
    fn wait(&self) -> Xxh64 {
        self.done.wait_for_completion();
        *self.state.lock()
    }
}

impl WorkItem for HashJob {
    type Pointer = Arc<HashJob>;

    fn run(this: Arc<HashJob>) {
        let mut h = *this.state.lock();
        for &(addr, len) in this.pieces.iter() {
            // SAFETY: the pieces are slices of the `SideHasher`'s pages, whose owner neither
            // changes nor frees them until it has waited for `done`, which comes after.
            h.update(unsafe { core::slice::from_raw_parts(addr as *const u8, len) });
        }
        *this.state.lock() = h;
        this.done.complete_all();
    }
}

/// Streamed data nobody takes is read this much at a time.
const SKIP_CHUNK: usize = 256 << 10;

/// The image being read by a restart, record by record, validated on the way.
///
/// A reader looks at the next record's kind with [`ImageIn::peek`] and consumes it with
/// [`ImageIn::take`]; the payload of the record peeked or taken last is [`ImageIn::payload`].
/// Optional records this version does not know are skipped; an ERROR record fails the read.
///
/// A PAGES record is streamed: its payload here is only the part before the data
/// ([`ImageIn::pages`]), and the data goes straight to where it belongs
/// ([`ImageIn::pages_into`], [`ImageIn::data_into`]), hashed there. Data nobody took is
/// read and hashed on the way to the next record.
pub(crate) struct ImageIn {
    file: ARef<File>,
    check: StreamValidator,
    payload: KVVec<u8>,
    offset: u64,
    kind: u32,
    /// Payload length of the record peeked or taken last.
    payload_len: usize,
    /// Bytes of a streamed payload not taken yet, and the padding after it.
    data_left: usize,
    pad: usize,
    /// A streamed record's body is not over.
    in_body: bool,
    /// Pages read in last, hashed meanwhile on another CPU: the stream's hash is lent to the job.
    hashing: Option<(Arc<HashJob>, OwnPages)>,
    /// Room for a batch of pages, handed to the next reader of pages.
    spare: Option<OwnPages>,
    /// A record was peeked and is not taken yet.
    peeked: bool,
}

/// Runs of pages at least this long are hashed on another CPU while the next run is read.
const SIDE_HASH_FROM: usize = 16 * PAGE_SIZE;

impl ImageIn {
    /// Reads and checks the magic.
    pub(crate) fn open(file: ARef<File>) -> CrResult<Self> {
        let mut me = Self {
            file,
            check: StreamValidator::new(),
            payload: KVVec::new(),
            offset: 0,
            kind: 0,
            payload_len: 0,
            data_left: 0,
            pad: 0,
            in_body: false,
            hashing: None,
            spare: None,
            peeked: false,
        };
        let mut magic = [0u8; 8];
        me.read(&mut magic)?;
        me.check.magic(&magic)?;
        Ok(me)
    }

    /// The validated header, once the first record was read.
    pub(crate) fn header(&self) -> Option<&crate::format::Header> {
        self.check.header()
    }

    fn read(&mut self, buf: &mut [u8]) -> CrResult {
        self.file
            .read_full(buf)
            .map_err(|err| self.read_failed(err))
    }

    /// A read at the current offset that failed with `err`: the stream ending early is a
    /// truncated image.
    fn read_failed(&self, err: Error) -> CrError {
        let at = self.check.offset();
        if err == ENODATA {
            CrError::malformed(ErrorKind::Truncated).at(at)
        } else {
            CrError::new(err, "reading the image failed").at(at)
        }
    }

    /// Offset of the record peeked or taken last.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the stream read so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.check.offset()
    }

    /// A failure at the record peeked or taken last.
    pub(crate) fn fail(&self, err: Error, reason: &'static str) -> CrError {
        CrError::new(err, reason).at(self.offset)
    }

    /// A malformed-record failure at the record peeked or taken last.
    pub(crate) fn malformed(&self, kind: ErrorKind) -> CrError {
        CrError::malformed(kind).at(self.offset)
    }

    /// The kind of the next record, which stays to be taken.
    pub(crate) fn peek(&mut self) -> CrResult<u32> {
        if !self.peeked {
            self.read_record()?;
            self.peeked = true;
        }
        Ok(self.kind)
    }

    /// Takes the next record and returns its kind; its payload is [`Self::payload`].
    pub(crate) fn take(&mut self) -> CrResult<u32> {
        let kind = self.peek()?;
        self.peeked = false;
        Ok(kind)
    }

    /// Takes the next record, which must be of `kind`.
    pub(crate) fn expect(&mut self, kind: RecordKind) -> CrResult {
        let got = self.take()?;
        if got != kind as u32 {
            return Err(self.malformed(ErrorKind::UnknownKind(got)));
        }
        Ok(())
    }

    fn read_record(&mut self) -> CrResult {
        self.skip_data()?;
        self.settle()?;
        loop {
            let mut hdr = [0u8; RECORD_HEADER_LEN];
            self.offset = self.check.offset();
            self.read(&mut hdr)?;
            let hdr: RecordHeader = self.check.record_header(&hdr)?;
            self.payload_len = hdr.payload_len();
            if hdr.kind == RecordKind::Pages as u32 {
                self.kind = hdr.kind;
                return self.read_pages_head(&hdr);
            }
            let body = hdr.payload_len() + hdr.padding_len();
            debug_assert!(body <= MAX_RECORD_LEN as usize);
            self.payload.clear();
            self.payload
                .resize(body, 0, GFP_KERNEL)
                .map_err(|_| self.fail(ENOMEM, "out of memory for a record"))?;
            let mut payload = core::mem::take(&mut self.payload);
            let res = self.read(&mut payload).and_then(|()| {
                let (p, pad) = payload.split_at(hdr.payload_len());
                self.check
                    .record_body(&hdr, p, pad)
                    .map(|_| ())
                    .map_err(CrError::from)
            });
            payload.truncate(hdr.payload_len());
            self.payload = payload;
            res?;
            match RecordKind::from_u32(hdr.kind) {
                Some(RecordKind::Error) => {
                    return Err(self.malformed(ErrorKind::CheckpointFailed));
                }
                None => continue,
                Some(_) => {
                    self.kind = hdr.kind;
                    return Ok(());
                }
            }
        }
    }

    /// The part of a PAGES record before its data: the count, then the addresses.
    fn read_pages_head(&mut self, hdr: &RecordHeader) -> CrResult {
        self.check.begin_body(hdr)?;
        self.in_body = true;
        let mut fixed = [0u8; PageList::FIXED];
        if hdr.payload_len() < fixed.len() {
            return Err(self.malformed(ErrorKind::BadField("pages")));
        }
        self.read(&mut fixed)?;
        let n = PageList::count_of(&fixed).map_err(|k| self.malformed(k))?;
        let head_len = fixed.len() + n * 8;
        if head_len > hdr.payload_len() {
            return Err(self.malformed(ErrorKind::BadField("pages")));
        }
        self.payload.clear();
        self.payload
            .resize(head_len, 0, GFP_KERNEL)
            .map_err(|_| self.fail(ENOMEM, "out of memory for a record"))?;
        self.payload[..fixed.len()].copy_from_slice(&fixed);
        let mut payload = core::mem::take(&mut self.payload);
        let res = self.read(&mut payload[fixed.len()..]);
        self.payload = payload;
        res?;
        self.check.body_part(&self.payload)?;
        // The addresses are checked here, so a reader that only skips the data checks them too.
        PageList::decode(&self.payload, hdr.payload_len()).map_err(|k| self.malformed(k))?;
        self.data_left = hdr.payload_len() - head_len;
        self.pad = hdr.padding_len();
        self.end_data()
    }

    /// The pages of the PAGES record taken last.
    pub(crate) fn pages(&self) -> CrResult<PageList<'_>> {
        if self.kind != RecordKind::Pages as u32 {
            return Err(self.malformed(ErrorKind::UnknownKind(self.kind)));
        }
        PageList::decode(&self.payload, self.payload_len).map_err(|k| self.malformed(k))
    }

    /// Reads the next pages of the record's data straight into `pages`, and hashes them there:
    /// for a long run, on another CPU while the caller goes on reading the next run, unless
    /// `other_cpu_busy` (the other CPU makes the pages present: hashing there too would make it
    /// the slower of the two). `pages` may come back as another batch of the same room (the one
    /// read stays with the hash).
    pub(crate) fn pages_into(&mut self, pages: &mut OwnPages, other_cpu_busy: bool) -> CrResult {
        let len = pages.len() * PAGE_SIZE;
        if len > self.data_left {
            return Err(self.malformed(ErrorKind::BadField("pages")));
        }
        pages
            .fill_from(&self.file)
            .map_err(|err| self.read_failed(err))?;
        self.data_left -= len;
        // The previous run's hash comes first in the stream.
        self.settle()?;
        if len < SIDE_HASH_FROM || other_cpu_busy {
            for page in pages.contents() {
                self.check.body_part(page)?;
            }
            return self.end_data();
        }
        let before = self.check.lend(len)?;
        match HashJob::start(pages.contents(), before) {
            Ok(job) => {
                let spare = match self.spare.take() {
                    Some(s) => s,
                    None => OwnPages::with_capacity(PAGES_PER_RECORD)?,
                };
                let read = core::mem::replace(pages, spare);
                self.hashing = Some((job, read));
            }
            Err(_) => {
                let mut h = before;
                for page in pages.contents() {
                    h.update(page);
                }
                self.check.give_back(h)?;
            }
        }
        self.end_data()
    }

    /// Waits for the pages hashed on another CPU, takes the hash back, and keeps their room.
    fn settle(&mut self) -> CrResult {
        if let Some((job, mut pages)) = self.hashing.take() {
            let h = job.wait();
            pages.clear();
            self.spare = Some(pages);
            self.check.give_back(h)?;
        }
        Ok(())
    }

    /// Reads the next `buf.len()` bytes of the record's data into `buf`.
    pub(crate) fn data_into(&mut self, buf: &mut [u8]) -> CrResult {
        if buf.len() > self.data_left {
            return Err(self.malformed(ErrorKind::BadField("pages")));
        }
        self.settle()?;
        self.read(buf)?;
        self.check.body_part(buf)?;
        self.data_left -= buf.len();
        self.end_data()
    }

    /// Once the data is all taken: the padding, and the end of the record.
    fn end_data(&mut self) -> CrResult {
        if self.data_left > 0 || !self.in_body {
            return Ok(());
        }
        self.settle()?;
        let mut pad = [0u8; 8];
        let pad = &mut pad[..self.pad];
        self.read(pad)?;
        self.check.body_part(pad)?;
        self.check.end_body()?;
        self.in_body = false;
        Ok(())
    }

    /// Reads (and hashes) the data of a streamed record that no one took: a dry run's.
    fn skip_data(&mut self) -> CrResult {
        if self.data_left == 0 {
            return Ok(());
        }
        let mut scratch = core::mem::take(&mut self.payload);
        scratch.clear();
        let res = scratch
            .resize(self.data_left.min(SKIP_CHUNK), 0, GFP_KERNEL)
            .map_err(|_| self.fail(ENOMEM, "out of memory for a record"))
            .and_then(|()| {
                while self.data_left > 0 {
                    let n = self.data_left.min(scratch.len());
                    self.data_into(&mut scratch[..n])?;
                }
                Ok(())
            });
        self.payload = scratch;
        res
    }

    /// The payload of the record peeked or taken last.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True once the trailer was read and matched.
    pub(crate) fn is_complete(&self) -> bool {
        self.check.is_complete()
    }
}

impl Drop for ImageIn {
    fn drop(&mut self) {
        // The hash job reads the pages until it is done; only then may they go.
        if let Some((job, _pages)) = self.hashing.take() {
            job.wait();
        }
    }
}

/// The header of an image this kernel writes, with `flags`.
pub(crate) fn header(flags: u32) -> Header {
    let mut release = [0u8; RELEASE_LEN];
    current::release(&mut release);
    let mut h = Header {
        format_version: FORMAT_VERSION,
        arch: ARCH_X86_64,
        flags,
        page_size: PAGE_SIZE as u32,
        xstate_size: current::xstate_size(),
        xfeatures: current::xfeatures(),
        time_ns: RealTime::ktime_get() as u64,
        release: [0; RELEASE_LEN],
    };
    let end = release
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(RELEASE_LEN - 1);
    h.set_release(&release[..end]);
    h
}
