// SPDX-License-Identifier: GPL-2.0

//! A container's namespaces. The pid, UTS and IPC namespaces themselves are created by
//! `restart` (clone3 with CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC); the module saves and
//! restores what is in them: the UTS names (UTS). SysV IPC objects are refused at checkpoint.

use kernel::task::Task;

use crate::error::{Context, CrResult};
use crate::format::{RecordKind, UtsRecord};
use crate::image::{ImageIn, ImageOut};
use crate::records;
use crate::shim::{current, TaskExt, UTS_BUF};

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
pub(crate) fn save(out: &mut ImageOut, root: &Task) -> CrResult {
    let (node, domain) = root.uts();
    let (node, domain) = (until_nul(&node), until_nul(&domain));
    let rec = UtsRecord {
        nodename_len: node.len() as u32,
        domainname_len: domain.len() as u32,
    };
    out.record(RecordKind::Uts as u32, &[&rec.encode(), node, domain])?;
    Ok(())
}

/// UTS (the caller has just taken it).
pub(crate) fn load(input: &ImageIn) -> CrResult<KeptUts> {
    let u = records::Uts::decode(input.payload()).map_err(|k| input.malformed(k))?;
    let mut kept = KeptUts {
        node: [0; UTS_BUF],
        domain: [0; UTS_BUF],
    };
    kept.node[..u.nodename.len()].copy_from_slice(u.nodename);
    kept.domain[..u.domainname.len()].copy_from_slice(u.domainname);
    Ok(kept)
}

/// Sets the names in the caller's UTS namespace, which `restart` created for the container.
pub(crate) fn apply(kept: &KeptUts) -> CrResult {
    current::set_uts(&kept.node, &kept.domain).why("restoring the container's host name failed")
}
