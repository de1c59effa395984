// SPDX-License-Identifier: GPL-2.0

//! Image streams and the log: the glue between `format.rs` and kernel files.

use core::fmt::{self, Write as _};

use kernel::{fs::file::LocalFile, prelude::*};

use crate::format::{
    self, ErrorKind, FormatError, ImageWriter, RecordHeader, RecordKind, Sink, StreamValidator,
    MAX_RECORD_LEN, RECORD_HEADER_LEN,
};
use crate::shim::FileRef;

/// Takes a reference to the file behind descriptor `fd` of the caller.
pub(crate) fn file_of_fd(fd: i32) -> Result<FileRef> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let f = LocalFile::fget(fd).map_err(|_| EBADF)?;
    Ok(FileRef::from_kernel(&f))
}

/// Where reasons for failures go: the caller's logfd, or nowhere for -1.
pub(crate) struct Log(Option<FileRef>);

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
    file: FileRef,
    buf: KVVec<u8>,
}

const SINK_BUFFER: usize = 256 << 10;

impl FileSink {
    pub(crate) fn new(file: FileRef) -> Result<Self> {
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

/// Maps a writer error to an errno.
pub(crate) fn write_error(e: format::WriteError<Error>) -> Error {
    match e {
        format::WriteError::Sink(e) => e,
        format::WriteError::TooLarge => E2BIG,
    }
}

/// Why a restart stopped: the errno for the caller, the stream offset, and a reason for logfd.
pub(crate) struct Failure {
    pub(crate) err: Error,
    pub(crate) offset: u64,
    pub(crate) reason: Reason,
}

/// The reason of a [`Failure`].
pub(crate) enum Reason {
    /// The stream is malformed.
    Format(ErrorKind),
    /// The stream is well-formed but its state could not be applied.
    Text(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(k) => write!(f, "{k}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

impl From<FormatError> for Failure {
    fn from(e: FormatError) -> Self {
        Self {
            err: EINVAL,
            offset: e.offset,
            reason: Reason::Format(e.kind),
        }
    }
}

/// The image being read by a restart, record by record, validated on the way.
pub(crate) struct ImageIn {
    file: FileRef,
    check: StreamValidator,
    payload: KVVec<u8>,
    offset: u64,
    last_kind: u32,
    replay: Option<u32>,
}

impl ImageIn {
    /// Reads and checks the magic.
    pub(crate) fn open(file: FileRef) -> core::result::Result<Self, Failure> {
        let mut me = Self {
            file,
            check: StreamValidator::new(),
            payload: KVVec::new(),
            offset: 0,
            last_kind: 0,
            replay: None,
        };
        let mut magic = [0u8; 8];
        me.read(&mut magic)?;
        me.check.magic(&magic)?;
        Ok(me)
    }

    /// The validated header, once the first record was read.
    pub(crate) fn header(&self) -> Option<&format::Header> {
        self.check.header()
    }

    fn read(&mut self, buf: &mut [u8]) -> core::result::Result<(), Failure> {
        self.file.read_full(buf).map_err(|err| Failure {
            err: if err == ENODATA { EINVAL } else { err },
            offset: self.check.offset(),
            reason: if err == ENODATA {
                Reason::Format(ErrorKind::Truncated)
            } else {
                Reason::Text("reading the image failed")
            },
        })
    }

    /// Offset of the record returned last.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// A failure at the record returned last.
    pub(crate) fn fail(&self, err: Error, reason: &'static str) -> Failure {
        Failure {
            err,
            offset: self.offset,
            reason: Reason::Text(reason),
        }
    }

    /// A malformed-record failure at the record returned last.
    pub(crate) fn malformed(&self, kind: ErrorKind) -> Failure {
        Failure {
            err: EINVAL,
            offset: self.offset,
            reason: Reason::Format(kind),
        }
    }

    /// Reads the next record, which must be of `kind`; its payload is [`Self::payload`].
    pub(crate) fn expect(&mut self, kind: RecordKind) -> core::result::Result<(), Failure> {
        let got = self.next()?;
        if got != kind as u32 {
            return Err(self.malformed(ErrorKind::UnknownKind(got)));
        }
        Ok(())
    }

    /// Reads the next record and returns its kind; the payload is [`Self::payload`].
    /// Optional records this version does not know are skipped; an ERROR record fails.
    pub(crate) fn next(&mut self) -> core::result::Result<u32, Failure> {
        if let Some(kind) = self.replay.take() {
            return Ok(kind);
        }
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
                .map_err(|_| Failure {
                    err: ENOMEM,
                    offset: self.offset,
                    reason: Reason::Text("out of memory for a record"),
                })?;
            let mut payload = core::mem::take(&mut self.payload);
            let res = self.read(&mut payload);
            let res = res.and_then(|()| {
                let (p, pad) = payload.split_at(hdr.payload_len());
                self.check.record_body(&hdr, p, pad).map_err(Failure::from)
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
                    self.last_kind = hdr.kind;
                    return Ok(hdr.kind);
                }
            }
        }
    }

    /// Makes the next [`Self::next`] return the record just read again: for a reader that had
    /// to see a record to know that its own part of the stream ended.
    pub(crate) fn replay(&mut self) {
        self.replay = Some(self.last_kind);
    }

    /// The payload of the record returned last.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True once the trailer was read and matched.
    pub(crate) fn is_complete(&self) -> bool {
        self.check.is_complete()
    }
}
