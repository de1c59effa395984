// SPDX-License-Identifier: GPL-2.0

//! A container's namespaces. The pid, UTS and IPC namespaces themselves are created by
//! `restart` (clone3 with CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC); the module saves and
//! restores what is in them: the UTS names. SysV IPC objects are refused at checkpoint.

use kernel::prelude::*;

use crate::checkpoint::Stop;
use crate::format::{self, ErrorKind, RecordKind, UtsRecord, UTS_NAME_MAX};
use crate::image::{Failure, ImageIn, ImageOut};
use crate::shim::{self, TaskRef, UTS_BUF};

/// The UTS names read at restart, zero-padded.
pub(crate) struct KeptUts {
    node: [u8; UTS_BUF],
    domain: [u8; UTS_BUF],
}

fn until_nul(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

/// UTS: the container root's node name and domain name.
pub(crate) fn save(out: &mut ImageOut, root: &TaskRef) -> Result<(), Stop> {
    let (node, domain) = root.uts();
    let (node, domain) = (until_nul(&node), until_nul(&domain));
    let rec = UtsRecord {
        nodename_len: node.len() as u32,
        domainname_len: domain.len() as u32,
    };
    out.record(RecordKind::Uts as u32, &[&rec.encode(), node, domain])?;
    Ok(())
}

/// Reads UTS (the caller has just read it).
pub(crate) fn load(input: &ImageIn) -> Result<KeptUts, Failure> {
    let p = input.payload();
    let (rec, rest) = format::split_fixed(RecordKind::Uts, p, UtsRecord::LEN, UtsRecord::decode)
        .map_err(|k| input.malformed(k))?;
    let (n, d) = (rec.nodename_len as usize, rec.domainname_len as usize);
    if n > UTS_NAME_MAX || d > UTS_NAME_MAX || rest.len() != n + d || rest.contains(&0) {
        return Err(input.malformed(ErrorKind::BadField("uts")));
    }
    let mut kept = KeptUts {
        node: [0; UTS_BUF],
        domain: [0; UTS_BUF],
    };
    kept.node[..n].copy_from_slice(&rest[..n]);
    kept.domain[..d].copy_from_slice(&rest[n..]);
    Ok(kept)
}

/// Sets the names in the caller's UTS namespace, which `restart` created for the container.
pub(crate) fn apply(kept: &KeptUts) -> Result {
    shim::current::set_uts(&kept.node, &kept.domain)
}
