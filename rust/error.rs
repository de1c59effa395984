// SPDX-License-Identifier: GPL-2.0

//! The module's one error type.
//!
//! Every failure of a checkpoint or a restart, whether the state cannot be saved, the image is
//! malformed, or the kernel said no, is a [`CrError`]: the errno the ioctl returns, the reason
//! that goes to logfd, and, where they are known, the image offset and the task it is about.

use core::fmt;

use kernel::prelude::*;

use crate::forest_rules::Problem;
use crate::format::{ErrorKind, FormatError, WriteError};

/// Why something failed, for logfd.
#[derive(Clone, Copy)]
pub(crate) enum Why {
    /// A one-line reason.
    Text(&'static str),
    /// The image is malformed.
    Format(ErrorKind),
    /// A tree `restart` could not recreate.
    Forest(Problem),
    /// Another task of the restart failed and said why; this one says nothing more.
    SessionFailed,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Text(s) => f.write_str(s),
            Why::Format(k) => write!(f, "{k}"),
            Why::Forest(p) => write!(f, "restart could not recreate this tree: {p}"),
            Why::SessionFailed => f.write_str("another task of the tree failed"),
        }
    }
}

/// An error of cr: errno, reason, and where.
#[derive(Clone, Copy)]
pub(crate) struct CrError {
    /// What the ioctl returns.
    pub(crate) errno: Error,
    /// What logfd is told.
    pub(crate) why: Why,
    /// The offset of the image record at fault.
    pub(crate) offset: Option<u64>,
    /// The task it is about, by its pid in the image.
    pub(crate) task: Option<u32>,
}

/// Results of cr.
pub(crate) type CrResult<T = ()> = core::result::Result<T, CrError>;

impl CrError {
    /// An error with a reason.
    pub(crate) const fn new(errno: Error, reason: &'static str) -> Self {
        Self {
            errno,
            why: Why::Text(reason),
            offset: None,
            task: None,
        }
    }

    /// State cr cannot checkpoint or restore yet.
    pub(crate) const fn unsupported(reason: &'static str) -> Self {
        Self::new(EOPNOTSUPP, reason)
    }

    /// A malformed image.
    pub(crate) const fn malformed(kind: ErrorKind) -> Self {
        Self {
            errno: EINVAL,
            why: Why::Format(kind),
            offset: None,
            task: None,
        }
    }

    /// A task of the restart failed before this one.
    pub(crate) const fn session_failed() -> Self {
        Self {
            errno: EINTR,
            why: Why::SessionFailed,
            offset: None,
            task: None,
        }
    }

    /// The same error, at image offset `offset` (unless it already has one).
    pub(crate) fn at(mut self, offset: u64) -> Self {
        self.offset.get_or_insert(offset);
        self
    }

    /// The same error, about task `pid` (unless it already names one).
    pub(crate) fn of_task(mut self, pid: u32) -> Self {
        self.task.get_or_insert(pid);
        self
    }

    /// Whether logfd already heard about it from another task.
    pub(crate) fn is_echo(&self) -> bool {
        matches!(self.why, Why::SessionFailed)
    }

    /// The reason alone, for an ERROR record.
    pub(crate) fn reason(&self) -> &'static str {
        match self.why {
            Why::Text(s) => s,
            Why::Format(_) => "the image is malformed",
            Why::Forest(p) => p.reason(),
            Why::SessionFailed => "another task of the tree failed",
        }
    }
}

/// The line logfd gets: `OP: pid N: [task T: ]reason (errno E)` for a checkpoint,
/// `OP: error at image offset N: reason (errno E)` for a restart.
pub(crate) struct Line<'a> {
    pub(crate) op: &'static str,
    pub(crate) pid: Option<i32>,
    pub(crate) error: &'a CrError,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.error;
        f.write_str(self.op)?;
        if let Some(pid) = self.pid {
            write!(f, ": pid {pid}")?;
        }
        if let Some(offset) = e.offset {
            write!(f, ": error at image offset {offset}")?;
        }
        if let Some(task) = e.task {
            write!(f, ": task {task}")?;
        }
        write!(f, ": {} (errno {})", e.why, -e.errno.to_errno())
    }
}

impl From<Error> for CrError {
    fn from(errno: Error) -> Self {
        Self::new(errno, "the kernel refused an operation")
    }
}

impl From<kernel::alloc::AllocError> for CrError {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self::new(ENOMEM, "out of memory")
    }
}

impl From<FormatError> for CrError {
    fn from(e: FormatError) -> Self {
        Self::malformed(e.kind).at(e.offset)
    }
}

impl From<ErrorKind> for CrError {
    fn from(kind: ErrorKind) -> Self {
        Self::malformed(kind)
    }
}

impl From<Problem> for CrError {
    fn from(p: Problem) -> Self {
        Self {
            errno: EOPNOTSUPP,
            why: Why::Forest(p),
            offset: None,
            task: None,
        }
    }
}

impl From<WriteError<Error>> for CrError {
    fn from(e: WriteError<Error>) -> Self {
        match e {
            WriteError::Sink(errno) => Self::new(errno, "writing the image failed"),
            WriteError::TooLarge => Self::new(E2BIG, "a record or the image is too large"),
        }
    }
}

/// Gives a kernel error its reason.
pub(crate) trait Context<T> {
    /// The error, with `reason` for logfd.
    fn why(self, reason: &'static str) -> CrResult<T>;
}

impl<T> Context<T> for core::result::Result<T, Error> {
    fn why(self, reason: &'static str) -> CrResult<T> {
        self.map_err(|e| CrError::new(e, reason))
    }
}

impl<T> Context<T> for core::result::Result<T, kernel::alloc::AllocError> {
    fn why(self, _reason: &'static str) -> CrResult<T> {
        self.map_err(CrError::from)
    }
}
