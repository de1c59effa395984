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

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;
