// SPDX-License-Identifier: GPL-2.0

//! Image streams and the log: the glue between `format.rs` and kernel files.

use core::fmt::{self, Write as _};

use kernel::{
    fs::{file::LocalFile, File},
    prelude::*,
    sync::aref::ARef,
};

use crate::error::{CrError, CrResult, Line};
use crate::format::{
    ErrorKind, ImageWriter, RecordHeader, RecordKind, Sink, StreamValidator, MAX_RECORD_LEN,
    RECORD_HEADER_LEN,
};
use crate::shim::FileExt;

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

/// Buffers image bytes and writes them to the image file in large pieces.
pub(crate) struct FileSink {
    file: ARef<File>,
    buf: KVVec<u8>,
}

const SINK_BUFFER: usize = 256 << 10;

impl FileSink {
    pub(crate) fn new(file: ARef<File>) -> Result<Self> {
        Ok(Self {
            file,
            buf: KVVec::with_capacity(SINK_BUFFER, GFP_KERNEL)?,
        })
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&mut self) -> Result {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
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
            return self.file.write_all(bytes);
        }
        self.buf.extend_from_slice(bytes, GFP_KERNEL)?;
        Ok(())
    }
}

/// The image being written by a checkpoint.
pub(crate) type ImageOut = ImageWriter<FileSink>;

/// The image being read by a restart, record by record, validated on the way.
///
/// A reader looks at the next record's kind with [`ImageIn::peek`] and consumes it with
/// [`ImageIn::take`]; the payload of the record peeked or taken last is [`ImageIn::payload`].
/// Optional records this version does not know are skipped; an ERROR record fails the read.
pub(crate) struct ImageIn {
    file: ARef<File>,
    check: StreamValidator,
    payload: KVVec<u8>,
    offset: u64,
    kind: u32,
    /// A record was peeked and is not taken yet.
    peeked: bool,
}

impl ImageIn {
    /// Reads and checks the magic.
    pub(crate) fn open(file: ARef<File>) -> CrResult<Self> {
        let mut me = Self {
            file,
            check: StreamValidator::new(),
            payload: KVVec::new(),
            offset: 0,
            kind: 0,
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
        let at = self.check.offset();
        self.file.read_full(buf).map_err(|err| {
            if err == ENODATA {
                CrError::malformed(ErrorKind::Truncated).at(at)
            } else {
                CrError::new(err, "reading the image failed").at(at)
            }
        })
    }

    /// Offset of the record peeked or taken last.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
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
        loop {
            let mut hdr = [0u8; RECORD_HEADER_LEN];
            self.offset = self.check.offset();
            self.read(&mut hdr)?;
            let hdr: RecordHeader = self.check.record_header(&hdr)?;
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

    /// The payload of the record peeked or taken last.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True once the trailer was read and matched.
    pub(crate) fn is_complete(&self) -> bool {
        self.check.is_complete()
    }
}
