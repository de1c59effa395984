// SPDX-License-Identifier: GPL-2.0

//! Another task's address space, through `ARef<MmWithUser>`.

use kernel::{fs::File, mm::MmWithUser, sync::aref::ARef};

use super::ffi::{self, MmInfo, VmaInfo};
use super::file_or_none;

/// One memory area, as a checkpoint reads it.
pub(crate) struct Vma {
    /// Range, flags, offset and `CR_VF_*` facts.
    pub(crate) info: VmaInfo,
    /// The mapped file.
    pub(crate) file: Option<ARef<File>>,
}

/// What this module reads of an address space.
pub(crate) trait MmExt {
    /// Layout fields and auxv.
    fn layout(&self) -> MmInfo;
    /// The executable file.
    fn exe_file(&self) -> Option<ARef<File>>;
    /// The first area at or after `addr`.
    fn vma_from(&self, addr: u64) -> Option<Vma>;
    /// Bytes of anonymous and shmem memory resident now (the RSS counters).
    fn resident_private_bytes(&self) -> u64;
}

impl MmExt for MmWithUser {
    fn layout(&self) -> MmInfo {
        let mut info = MmInfo::default();
        // SAFETY: the mm has a user count; `info` is a valid out-parameter.
        unsafe { ffi::cr_mm_info(self.as_raw(), &mut info) };
        info
    }

    fn exe_file(&self) -> Option<ARef<File>> {
        // SAFETY: the mm has a user count; the shim returns a referenced file or NULL.
        file_or_none(unsafe { ffi::cr_mm_exe_file(self.as_raw()) })
    }

    fn vma_from(&self, addr: u64) -> Option<Vma> {
        let mut info = VmaInfo {
            start: 0,
            end: 0,
            vm_flags: 0,
            pgoff: 0,
            file: core::ptr::null_mut(),
            facts: 0,
            reserved: 0,
        };
        // SAFETY: the mm has a user count; `info` is a valid out-parameter.
        if unsafe { ffi::cr_vma_next(self.as_raw(), addr, &mut info) } <= 0 {
            return None;
        }
        let file = file_or_none(info.file);
        info.file = core::ptr::null_mut();
        Some(Vma { info, file })
    }

    fn resident_private_bytes(&self) -> u64 {
        // SAFETY: the mm has a user count.
        unsafe { ffi::cr_mm_resident_private(self.as_raw()) }
    }
}
