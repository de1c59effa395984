// SPDX-License-Identifier: GPL-2.0

//! Root directory, working directory and umask (`struct fs_struct`).

use kernel::prelude::*;

use crate::checkpoint::{refuse, SaveCx, Stop};
use crate::format::{self, FsRecord, RecordKind, PATH_MAX};
use crate::image::{Failure, ImageIn};
use crate::shim;

/// Root and cwd as NUL-terminated paths, and the umask.
#[derive(Default)]
pub(crate) struct KeptFs {
    root: KVec<u8>,
    cwd: KVec<u8>,
    umask: u32,
}

/// Refuses a root or cwd that cannot be found again by path.
pub(crate) fn precheck(task: &shim::TaskRef) -> Result<(), shim::Refusal> {
    let mut root = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let mut cwd = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    task.fs(&mut root, &mut cwd)
        .map(|_| ())
        .map_err(|err| shim::Refusal {
            err: if err == ENOENT { EOPNOTSUPP } else { err },
            reason: "root or cwd is unreachable or deleted",
        })
}

/// FS.
pub(crate) fn save(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    let mut root = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let mut cwd = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let umask = cx
        .task
        .fs(&mut root, &mut cwd)
        .map_err(|e| refuse(e, "root or cwd is unreachable or deleted"))?;
    let root_len = root.iter().position(|&b| b == 0).unwrap_or(0);
    let cwd_len = cwd.iter().position(|&b| b == 0).unwrap_or(0);
    let rec = FsRecord {
        umask,
        root_len: root_len as u32,
        cwd_len: cwd_len as u32,
        reserved: 0,
    };
    cx.record(
        RecordKind::Fs,
        &[&rec.encode(), &root[..root_len], &cwd[..cwd_len]],
    )
}

/// Reads FS.
pub(crate) fn load(input: &mut ImageIn, kept: &mut KeptFs) -> Result<(), Failure> {
    input.expect(RecordKind::Fs)?;
    let p = input.payload();
    let (rec, rest) = format::split_fixed(RecordKind::Fs, p, FsRecord::LEN, FsRecord::decode)
        .map_err(|k| input.malformed(k))?;
    let (root, rest) = format::take_path(rest, rec.root_len).map_err(|k| input.malformed(k))?;
    let (cwd, rest) = format::take_path(rest, rec.cwd_len).map_err(|k| input.malformed(k))?;
    if !rest.is_empty() || rec.umask & !0o777 != 0 {
        return Err(input.malformed(format::ErrorKind::BadField("fs")));
    }
    kept.root = shim::nul_terminated(root).map_err(|e| input.fail(e, "out of memory"))?;
    kept.cwd = shim::nul_terminated(cwd).map_err(|e| input.fail(e, "out of memory"))?;
    kept.umask = rec.umask;
    Ok(())
}

/// Applies FS.
pub(crate) fn apply(kept: &KeptFs) -> Result {
    shim::current::set_fs(&kept.root, &kept.cwd, kept.umask)
}
