//! The cr image format and `/dev/cr` ABI for userspace.
//!
//! The code is the kernel module's own: `format.rs`, `records.rs`, `uapi.rs` and
//! `forest_rules.rs` are compiled from `rust/` unchanged, so the tools and the kernel can never
//! disagree about the format, how each record decodes, or which trees a restart can recreate.
//! With the `serde` feature, the decoded records serialize.

#![no_std]
#![forbid(unsafe_code)]

#[path = "../../../rust/format.rs"]
pub mod format;

#[path = "../../../rust/uapi.rs"]
pub mod uapi;

#[path = "../../../rust/forest_rules.rs"]
pub mod forest_rules;

#[path = "../../../rust/records.rs"]
pub mod records;

extern crate alloc;

#[cfg(test)]
extern crate std;

/// A [`format::Sink`] that keeps the image in memory: for the tools' tests, which write images
/// with the module's own writer.
pub struct VecSink(pub alloc::vec::Vec<u8>);

impl format::Sink for VecSink {
    type Error = core::convert::Infallible;

    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
