// SPDX-License-Identifier: GPL-2.0

//! Root directory, working directory and umask (`struct fs_struct`): FS.

use kernel::{prelude::*, task::Task};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::format::{FsRecord, RecordKind, PATH_MAX};
use crate::records;
use crate::shim::{current, nul_terminated, TaskExt};

/// Root and cwd, NUL-terminated, and the umask: read once, at checkpoint, and again at restart.
#[derive(Default)]
pub(crate) struct Paths {
    root: KVec<u8>,
    cwd: KVec<u8>,
    umask: u32,
}

impl Paths {
    /// A task's, or a refusal when one of them can no longer be found by its path.
    pub(crate) fn read(task: &Task) -> CrResult<Self> {
        let mut root = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
        let mut cwd = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
        let umask = task.fs_paths(&mut root, &mut cwd).map_err(|err| {
            CrError::new(
                if err == ENOENT { EOPNOTSUPP } else { err },
                "root or cwd is unreachable or deleted",
            )
        })?;
        // Keep each path with its NUL, as the shim takes them back.
        for p in [&mut root, &mut cwd] {
            let len = p.iter().position(|&b| b == 0).unwrap_or(0);
            p.truncate(len + 1);
        }
        Ok(Self { root, cwd, umask })
    }

    fn without_nul(p: &[u8]) -> &[u8] {
        &p[..p.len().saturating_sub(1)]
    }
}

/// FS.
pub(crate) fn save(cx: &mut SaveCx<'_>, paths: &Paths) -> CrResult {
    let (root, cwd) = (
        Paths::without_nul(&paths.root),
        Paths::without_nul(&paths.cwd),
    );
    let rec = FsRecord {
        umask: paths.umask,
        root_len: root.len() as u32,
        cwd_len: cwd.len() as u32,
        reserved: 0,
    };
    cx.record(RecordKind::Fs, &[&rec.encode(), root, cwd])
}

/// FS.
pub(crate) fn load(cx: &mut LoadCx<'_>, kept: &mut Paths) -> CrResult {
    let fs = LoadCx::decode(cx.input, records::Fs::decode)?;
    kept.root = nul_terminated(fs.root)?;
    kept.cwd = nul_terminated(fs.cwd)?;
    kept.umask = fs.umask;
    Ok(())
}

/// Applies FS.
pub(crate) fn apply(kept: &Paths) -> CrResult {
    current::set_fs(&kept.root, &kept.cwd, kept.umask).why("restoring root and cwd failed")
}
