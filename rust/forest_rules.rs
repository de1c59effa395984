// SPDX-License-Identifier: GPL-2.0

//! Which process trees `restart` can recreate, after linux-cr's MakeForest.
//!
//! Shared, unchanged, by the kernel module and the tools (`#[path]`), like `format.rs`: the
//! module refuses at checkpoint exactly the trees that `restart` would refuse, so that an image
//! that was written is one that restores. `core` only.
//!
//! `restart` creates every process with `clone3(set_tid)` from its parent and every thread from
//! its process. Sessions and process groups follow from that:
//!
//! - a process that leads its session calls `setsid()`; one that leads its group, `setpgid(0, 0)`;
//! - a process in another group of its session joins it once every task exists; the group's
//!   leader must then be a live process of the tree, in the same session;
//! - a process whose session leader is dead is born under a *ghost*, a short-lived process with
//!   the leader's pid that calls `setsid()` and creates it;
//! - the root's session and group, when they lie outside the tree, are inherited from
//!   `restart` itself.

use core::fmt;

use crate::format::TreeEntry;

/// Why a tree cannot be recreated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No entries.
    Empty,
    /// The first entry is not a live process without a parent in the image.
    RootNotLive,
    /// A container image whose root is not pid 1 of its namespace.
    ContainerRootNotPid1,
    /// An entry precedes the process that creates it.
    CreatorLater {
        /// The task.
        pid: u32,
        /// Its parent (a process) or its thread group's leader (a thread).
        creator: u32,
    },
    /// A thread of a process that is a zombie.
    ThreadOfZombie {
        /// The thread.
        pid: u32,
    },
    /// A process is in a group whose leader is not a live process of its session in the tree.
    GroupWithoutLeader {
        /// The process.
        pid: u32,
        /// Its group.
        pgid: u32,
    },
    /// A process is in a session whose leader is alive but not among its ancestors' sessions.
    SessionLeaderNotAncestor {
        /// The process.
        pid: u32,
        /// Its session.
        sid: u32,
    },
    /// A process shares its descriptor table or fs_struct with a parent in another session.
    SharesAcrossGhost {
        /// The process.
        pid: u32,
    },
}

impl Problem {
    /// The task the problem is about, if one.
    pub fn pid(&self) -> Option<u32> {
        match *self {
            Self::Empty | Self::RootNotLive | Self::ContainerRootNotPid1 => None,
            Self::CreatorLater { pid, .. }
            | Self::ThreadOfZombie { pid }
            | Self::GroupWithoutLeader { pid, .. }
            | Self::SessionLeaderNotAncestor { pid, .. }
            | Self::SharesAcrossGhost { pid } => Some(pid),
        }
    }

    /// The reason, without the ids.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "the tree is empty",
            Self::RootNotLive => "the tree does not start with a live root process",
            Self::ContainerRootNotPid1 => "a container whose root is not pid 1",
            Self::CreatorLater { .. } => "a task comes before its parent in the image",
            Self::ThreadOfZombie { .. } => "a thread of a process that has exited",
            Self::GroupWithoutLeader { .. } => {
                "its group has no live leader in its session (not supported)"
            }
            Self::SessionLeaderNotAncestor { .. } => {
                "its session is led by a live task that is not its ancestor (not supported)"
            }
            Self::SharesAcrossGhost { .. } => {
                "it shares files with its parent across a dead session leader (not supported)"
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::CreatorLater { pid, creator } => {
                write!(f, "task {pid} comes before its parent {creator} in the image")
            }
            Self::GroupWithoutLeader { pid, pgid } => {
                write!(f, "process {pid}: its group {pgid} has no live leader in its session (not supported)")
            }
            Self::SessionLeaderNotAncestor { pid, sid } => write!(
                f,
                "process {pid}: its session {sid} is led by a live task that is not its ancestor (not supported)"
            ),
            ref p => match p.pid() {
                Some(pid) => write!(f, "process {pid}: {}", p.reason()),
                None => f.write_str(p.reason()),
            },
        }
    }
}

/// How one process sets its session and process group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Calls `setsid()` first thing: it leads its session.
    pub setsid: bool,
    /// Calls `setpgid(0, 0)` first thing: it leads its group (in its parent's session).
    pub lead_group: bool,
    /// Once every task exists, joins this group (led by another process of the tree).
    pub join_group: Option<u32>,
    /// The session it must end up in, unless inherited from outside the tree.
    pub expect_sid: Option<u32>,
    /// The process group it must end up in, likewise.
    pub expect_pgid: Option<u32>,
}

/// Finds the entry of the *process* (not a thread) with a pid.
pub trait ProcessIndex {
    /// Its index in the entries, if the tree has it.
    fn process(&self, pid: u32) -> Option<usize>;
}

/// A tree, with what lies outside it.
pub struct Lineage<'a> {
    entries: &'a [TreeEntry],
    index: &'a dyn ProcessIndex,
    /// The root's session and group when they are outside the tree (else `u32::MAX`).
    outside_sid: u32,
    outside_pgid: u32,
}

impl<'a> Lineage<'a> {
    /// Checks the root; `index` finds processes by pid.
    pub fn new(
        entries: &'a [TreeEntry],
        container: bool,
        index: &'a dyn ProcessIndex,
    ) -> Result<Self, Problem> {
        let root = entries.first().ok_or(Problem::Empty)?;
        if root.is_thread() || root.is_zombie() || root.ppid != 0 {
            return Err(Problem::RootNotLive);
        }
        if container && root.pid != 1 {
            return Err(Problem::ContainerRootNotPid1);
        }
        let outside = |id: u32| {
            if index.process(id).is_some() {
                u32::MAX
            } else {
                id
            }
        };
        Ok(Self {
            entries,
            index,
            outside_sid: outside(root.sid),
            outside_pgid: outside(root.pgid),
        })
    }

    /// Every rule, for every entry.
    pub fn check(&self) -> Result<(), Problem> {
        for (i, e) in self.entries.iter().enumerate().skip(1) {
            let creator = if e.is_thread() { e.tgid } else { e.ppid };
            match self.index.process(creator) {
                Some(c) if c < i => {
                    if e.is_thread() && self.entries[c].is_zombie() {
                        return Err(Problem::ThreadOfZombie { pid: e.pid });
                    }
                }
                _ => {
                    return Err(Problem::CreatorLater {
                        pid: e.pid,
                        creator,
                    })
                }
            }
        }
        for (i, e) in self.entries.iter().enumerate() {
            if !e.is_thread() {
                self.identity(i)?;
                self.ghost_of(i)?;
            }
        }
        Ok(())
    }

    /// The parent of process `i`, if it is in the tree.
    pub fn parent(&self, i: usize) -> Option<&'a TreeEntry> {
        self.index
            .process(self.entries[i].ppid)
            .map(|p| &self.entries[p])
    }

    /// How process `i` sets its session and group.
    pub fn identity(&self, i: usize) -> Result<Identity, Problem> {
        let e = &self.entries[i];
        let mut id = Identity::default();
        let outside_sid = e.sid == self.outside_sid || e.sid == 0;
        let outside_pgid = e.pgid == self.outside_pgid || e.pgid == 0;
        if !outside_sid {
            id.expect_sid = Some(e.sid);
            id.setsid = e.sid == e.pid;
        }
        if outside_pgid {
            return Ok(id);
        }
        id.expect_pgid = Some(e.pgid);
        if e.pgid == e.pid {
            id.lead_group = !id.setsid;
            return Ok(id);
        }
        let leader = self.index.process(e.pgid).map(|l| &self.entries[l]);
        let inherited = self.parent(i).is_some_and(|p| p.pgid == e.pgid);
        match leader {
            // Joined once every task exists (a no-op where it is inherited anyway).
            Some(l) if l.sid == e.sid && !l.is_zombie() => {
                id.join_group = Some(e.pgid);
                Ok(id)
            }
            // A dead session leader's ghost leads its group too: the process is in it when
            // born under the ghost, or when its parent is.
            None if e.pgid == e.sid
                && !outside_sid
                && (inherited || self.ghost_of(i)? == Some(e.sid)) =>
            {
                Ok(id)
            }
            _ => Err(Problem::GroupWithoutLeader {
                pid: e.pid,
                pgid: e.pgid,
            }),
        }
    }

    /// Whether process `c` must be born into a session its parent is not in: the pid of the
    /// ghost that leads it.
    pub fn ghost_of(&self, c: usize) -> Result<Option<u32>, Problem> {
        let e = &self.entries[c];
        let Some(parent) = self.parent(c) else {
            return Ok(None);
        };
        if e.sid == parent.sid || e.sid == e.pid || e.sid == self.outside_sid || e.sid == 0 {
            return Ok(None);
        }
        if self.entries.iter().any(|o| o.pid == e.sid) {
            return Err(Problem::SessionLeaderNotAncestor {
                pid: e.pid,
                sid: e.sid,
            });
        }
        if e.files_ref == parent.files_ref || e.fs_ref == parent.fs_ref {
            return Err(Problem::SharesAcrossGhost { pid: e.pid });
        }
        Ok(Some(e.sid))
    }
}
