// SPDX-License-Identifier: GPL-2.0

//! cr: in-kernel checkpoint/restart, after linux-cr.
//!
//! The module registers `/dev/cr`. Its ioctls are thin: they decode and size-check the argument
//! struct (see `include/uapi/linux/cr.h` for the extension rule) and hand off to the code for
//! each operation. The image format lives in `format.rs`, shared with the userspace tools.

use core::pin::Pin;

use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{aref::ARef, Mutex},
    uaccess::{UserPtr, UserSlice},
};

// Shared with the tools, which use more of these than the module does; `pub` keeps the parts
// only the tools use from counting as dead code here.
pub mod forest_rules;
pub mod format;
pub mod records;
pub mod uapi;

// Bottom: the error type, the shim, streams, the objhash and the contexts.
mod cx;
mod error;
mod image;
mod objhash;
mod prefault;
mod shim;

// One file per kind of state, each with its checkpoint and restore halves.
mod event;
mod files;
mod fs;
mod locks;
mod mm;
mod ns;
mod pipe;
mod regs;
mod shmem;
mod signals;
mod task;

// What a checkpoint copied, tracked for the next one.
mod tracking;

// The tree, leak detection, and the table of a task's section.
mod leaks;
mod section;
mod tree;

// The operations.
mod checkpoint;
mod precopy;
mod restart;

#[cfg(CONFIG_KUNIT)]
mod format_kunit;

use uapi::{ArgSize, IocParts};

module! {
    type: CrModule,
    name: "cr",
    authors: ["The cr authors"],
    description: "Checkpoint/restart of processes and containers",
    license: "GPL",
    imports_ns: ["CR"],
}

#[pin_data(PinnedDrop)]
struct CrModule {
    #[pin]
    _device: MiscDeviceRegistration<CrDevice>,
}

#[pinned_drop]
impl PinnedDrop for CrModule {
    fn drop(self: Pin<&mut Self>) {
        // No ioctl runs any more: each open /dev/cr holds a reference on the module.
        tracking::forget_all();
    }
}

impl kernel::InPlaceModule for CrModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called once, at module load, before /dev/cr exists and so before any use.
        unsafe { checkpoint::IN_FLIGHT.init() };
        // SAFETY: as above.
        unsafe { checkpoint::RUNNING.init() };
        // SAFETY: as above.
        unsafe { tracking::TRACKED.init() };
        // SAFETY: as above.
        unsafe { tracking::KEPT.init() };
        try_pin_init!(Self {
            _device <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"cr" }),
        })
    }
}

/// An open `/dev/cr`. A checkpoint is a complete operation, but for a thawed one, whose rounds
/// leave what they copied here for its frozen round; the tasks of one restart share the file
/// (inherited from the restarter) and with it the [`restart::Restart`].
#[pin_data]
struct CrDevice {
    #[pin]
    restart: restart::Restart,
    #[pin]
    precopy: Mutex<Option<precopy::Precopy>>,
    /// The image the next checkpoint or precopy is incremental to.
    #[pin]
    parent: Mutex<Option<tracking::ParentRef>>,
}

#[vtable]
impl MiscDevice for CrDevice {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(CrDevice {
                restart <- restart::Restart::new(),
                precopy <- new_mutex!(None),
                parent <- new_mutex!(None),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&CrDevice>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let parts = IocParts::split(cmd);
        if parts.magic != uapi::IOC_MAGIC {
            return Err(ENOTTY);
        }
        match (parts.nr, parts.dir) {
            (uapi::NR_VERSION, uapi::IOC_READ) => {
                let size = usable_size(parts.size, uapi::Version::SIZE_V1)?;
                let reply = version().to_bytes();
                write_out(arg, size, &reply)?;
                Ok(0)
            }
            (uapi::NR_CHECKPOINT, uapi::IOC_WRITE) => {
                let args = read_op_args(arg, parts.size, uapi::CHECKPOINT_FLAGS_KNOWN)?;
                // A precopy serves the next checkpoint on this file, or none.
                let precopy = me.precopy.lock().take();
                let parent = me.parent.lock().take();
                checkpoint::run(&args, precopy, parent)
            }
            (uapi::NR_PRECOPY, uapi::IOC_WRITE) => {
                let args = uapi::PrecopyArgs::from_bytes(&read_in(arg, parts.size)?);
                if args.flags & !uapi::PRECOPY_FLAGS_KNOWN != 0 {
                    return Err(EINVAL);
                }
                *me.precopy.lock() = None;
                let parent = me.parent.lock().take();
                let precopy = precopy::run(&args, parent)?;
                *me.precopy.lock() = Some(precopy);
                Ok(0)
            }
            (uapi::NR_PARENT, uapi::IOC_WRITE) => {
                let args = uapi::ParentArgs::from_bytes(&read_in(arg, parts.size)?);
                *me.parent.lock() = Some(tracking::ParentRef::read(&args)?);
                Ok(0)
            }
            (uapi::NR_STAGE, uapi::IOC_WRITE) => {
                let args = uapi::StageArgs::from_bytes(&read_in(arg, parts.size)?);
                restart::stage(&me.get_ref().restart, &args)
            }
            (uapi::NR_PROGRESS, uapi::IOC_READ) => {
                let size = usable_size(parts.size, uapi::Progress::SIZE_V1)?;
                write_out(arg, size, &checkpoint::progress()?.to_bytes())?;
                Ok(0)
            }
            (uapi::NR_RESTART, uapi::IOC_WRITE) => {
                // The ioctl may borrow the file from the caller's descriptor table, which the
                // restore replaces, while other tasks of the session still wait on `me`: hold a
                // reference of our own until we are done with the session.
                let _session_file: ARef<File> = file.into();
                let args = read_op_args(arg, parts.size, uapi::RESTART_FLAGS_KNOWN)?;
                restart::run(&me.get_ref().restart, &args)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// Applies the ABI's size rule to an ioctl argument.
fn usable_size(size: usize, v1: usize) -> Result<usize> {
    match uapi::classify_arg_size(size, v1) {
        ArgSize::Usable(n) => Ok(n),
        ArgSize::Invalid => Err(EINVAL),
    }
}

/// Copies an output struct to a caller whose struct is `size` bytes: a shorter one gets the
/// prefix it knows, a longer one gets the remainder zeroed, so it never sees stale stack data.
fn write_out(arg: usize, size: usize, reply: &[u8]) -> Result {
    let mut out = UserSlice::new(UserPtr::from_addr(arg), size).writer();
    let known = size.min(reply.len());
    out.write_slice(&reply[..known])?;
    let zeros = [0u8; 64];
    let mut rest = size - known;
    while rest > 0 {
        let n = rest.min(zeros.len());
        out.write_slice(&zeros[..n])?;
        rest -= n;
    }
    Ok(())
}

/// Reads a checkpoint or restart argument struct of `size` bytes, whose flags must be among
/// `known`.
fn read_op_args(arg: usize, size: usize, known_flags: u64) -> Result<uapi::OpArgs> {
    let args = uapi::OpArgs::from_bytes(&read_in(arg, size)?);
    if args.reserved != 0 || args.flags & !known_flags != 0 {
        return Err(EINVAL);
    }
    Ok(args)
}

/// Reads an input struct whose first version is `N` bytes from a caller whose struct is `size`
/// bytes, as the ABI's size rule says.
fn read_in<const N: usize>(arg: usize, size: usize) -> Result<[u8; N]> {
    let size = usable_size(size, N)?;
    let mut input = UserSlice::new(UserPtr::from_addr(arg), size).reader();
    let mut known = [0u8; N];
    input.read_slice(&mut known)?;
    // A newer caller's extra fields must be zero: this module would ignore them.
    let mut rest = size - known.len();
    while rest > 0 {
        let mut chunk = [0u8; 64];
        let n = rest.min(chunk.len());
        input.read_slice(&mut chunk[..n])?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Err(E2BIG);
        }
        rest -= n;
    }
    Ok(known)
}

/// What `CR_IOC_VERSION` reports.
fn version() -> uapi::Version {
    uapi::Version {
        abi_version: uapi::ABI_VERSION,
        image_version: format::FORMAT_VERSION,
        image_version_min: format::FORMAT_VERSION_MIN,
        arch: format::ARCH_X86_64,
        features: uapi::FEATURES_KNOWN,
    }
}
