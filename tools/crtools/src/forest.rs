//! The plan for recreating an image's process tree, after linux-cr's MakeForest: which task
//! creates which, with which clone flags, which sessions need a ghost leader, and which
//! process groups each task joins. Pure logic, so it is tested on the host; `restart` carries
//! it out.

use crimage::format::{entry_flags, tree_flags, TreeEntry, TreeHeader};

/// `CLONE_FS`, `CLONE_FILES`.
pub const CLONE_FS: u64 = 0x200;
/// `CLONE_FILES`.
pub const CLONE_FILES: u64 = 0x400;

/// How one process sets its session and process group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Calls setsid() first thing: it leads its session.
    pub setsid: bool,
    /// Calls setpgid(0, 0) first thing: it leads its group (in its parent's session).
    pub lead_group: bool,
    /// Once every task exists, joins this group (led by another task of the tree).
    pub join_group: Option<u32>,
    /// Session and group it must end up in, unless inherited from outside the tree.
    pub expect_sid: Option<u32>,
    /// Process group it must end up in, likewise.
    pub expect_pgid: Option<u32>,
}

/// Children a process creates: directly, or through a ghost that leads their (dead) session.
#[derive(Debug, PartialEq, Eq)]
pub enum Birth {
    /// clone3 by the parent itself.
    Direct(usize),
    /// A ghost with pid `sid` calls setsid(), creates these children, and exits; the parent,
    /// a subreaper meanwhile, adopts them.
    Ghost { sid: u32, children: Vec<usize> },
}

/// The tree of an image and what restart must do to recreate it.
pub struct Plan {
    pub entries: Vec<TreeEntry>,
    pub container: bool,
    /// Session and group of the root when they lie outside the tree: tasks in them inherit
    /// the restarter's.
    outside_sid: u32,
    outside_pgid: u32,
}

impl Plan {
    /// Checks that the tree is one restart can recreate.
    pub fn new(head: &TreeHeader, entries: Vec<TreeEntry>) -> Result<Self, String> {
        let root = *entries.first().ok_or("the image's tree is empty")?;
        if root.is_thread() || root.is_zombie() || root.ppid != 0 {
            return Err("the image's tree does not start with a live root process".into());
        }
        let container = head.flags & tree_flags::CONTAINER != 0;
        if container && root.pid != 1 {
            return Err("a container image whose root is not pid 1".into());
        }
        let in_tree = |pid: u32| entries.iter().any(|e| e.pid == pid && !e.is_thread());
        let plan = Plan {
            outside_sid: if in_tree(root.sid) {
                u32::MAX
            } else {
                root.sid
            },
            outside_pgid: if in_tree(root.pgid) {
                u32::MAX
            } else {
                root.pgid
            },
            entries,
            container,
        };
        for (i, e) in plan.entries.iter().enumerate() {
            let creator = if e.is_thread() { e.tgid } else { e.ppid };
            if i > 0 && !plan.entries[..i].iter().any(|b| b.pid == creator) {
                return Err(format!(
                    "task {} comes before its parent {creator} in the image",
                    e.pid
                ));
            }
            if !e.is_thread() {
                plan.identity(i)?;
            }
        }
        for i in 0..plan.entries.len() {
            plan.births(i)?;
        }
        Ok(plan)
    }

    fn pid_index(&self, pid: u32) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.pid == pid && !e.is_thread())
    }

    fn parent(&self, i: usize) -> Option<&TreeEntry> {
        let ppid = self.entries[i].ppid;
        self.pid_index(ppid).map(|p| &self.entries[p])
    }

    /// The processes entry `i` created (its children), in image order.
    pub fn children(&self, i: usize) -> Vec<usize> {
        let pid = self.entries[i].pid;
        (0..self.entries.len())
            .filter(|&c| c != i && !self.entries[c].is_thread() && self.entries[c].ppid == pid)
            .collect()
    }

    /// The other threads of process `i`.
    pub fn threads(&self, i: usize) -> Vec<usize> {
        let pid = self.entries[i].pid;
        (0..self.entries.len())
            .filter(|&t| self.entries[t].is_thread() && self.entries[t].tgid == pid)
            .collect()
    }

    /// How the process of entry `i` sets its session and group.
    pub fn identity(&self, i: usize) -> Result<Identity, String> {
        let e = &self.entries[i];
        let mut id = Identity::default();
        let outside_sid = e.sid == self.outside_sid || e.sid == 0;
        let outside_pgid = e.pgid == self.outside_pgid || e.pgid == 0;
        if !outside_sid {
            id.expect_sid = Some(e.sid);
            id.setsid = e.sid == e.pid;
        }
        if !outside_pgid {
            id.expect_pgid = Some(e.pgid);
            if e.pgid == e.pid {
                id.lead_group = !id.setsid;
            } else if e.pgid != e.sid {
                let leader = self.pid_index(e.pgid).map(|l| &self.entries[l]);
                match leader {
                    Some(l) if l.sid == e.sid && !l.is_zombie() => id.join_group = Some(e.pgid),
                    _ => {
                        return Err(format!(
                            "process {}: its group {} has no live leader in its session (not supported)",
                            e.pid, e.pgid
                        ))
                    }
                }
            }
        }
        Ok(id)
    }

    /// Whether entry `c` must be born into a session its parent is not in: the pid of the ghost
    /// that leads it.
    fn ghost_of(&self, c: usize) -> Result<Option<u32>, String> {
        let e = &self.entries[c];
        let Some(parent) = self.parent(c) else {
            return Ok(None);
        };
        if e.sid == parent.sid || e.sid == e.pid || e.sid == self.outside_sid || e.sid == 0 {
            return Ok(None);
        }
        if self.entries.iter().any(|o| o.pid == e.sid) {
            return Err(format!(
                "process {}: its session {} is led by a live task that is not its ancestor (not supported)",
                e.pid, e.sid
            ));
        }
        if e.files_ref == parent.files_ref || e.fs_ref == parent.fs_ref {
            return Err(format!(
                "process {}: it shares files with its parent across a dead session leader (not supported)",
                e.pid
            ));
        }
        Ok(Some(e.sid))
    }

    /// How process `i` creates its children: directly, or grouped under ghosts.
    pub fn births(&self, i: usize) -> Result<Vec<Birth>, String> {
        let mut births: Vec<Birth> = Vec::new();
        for c in self.children(i) {
            match self.ghost_of(c)? {
                None => births.push(Birth::Direct(c)),
                Some(sid) => {
                    let existing = births.iter_mut().find_map(|b| match b {
                        Birth::Ghost { sid: s, children } if *s == sid => Some(children),
                        _ => None,
                    });
                    match existing {
                        Some(children) => children.push(c),
                        None => births.push(Birth::Ghost {
                            sid,
                            children: vec![c],
                        }),
                    }
                }
            }
        }
        Ok(births)
    }

    /// clone3 flags for entry `c` created by entry `creator`: the sharing the image records.
    pub fn share_flags(&self, creator: usize, c: usize) -> u64 {
        let (p, e) = (&self.entries[creator], &self.entries[c]);
        let mut flags = 0;
        if e.files_ref == p.files_ref {
            flags |= CLONE_FILES;
        }
        if e.fs_ref == p.fs_ref {
            flags |= CLONE_FS;
        }
        flags
    }

    /// Whether process `i` must be a subreaper while it creates its children (to adopt those
    /// born under a ghost), and whether it stays one.
    pub fn subreaper(&self, i: usize) -> (bool, bool) {
        let keeps = self.entries[i].flags & entry_flags::SUBREAPER != 0;
        let ghosts = self
            .births(i)
            .is_ok_and(|b| b.iter().any(|b| matches!(b, Birth::Ghost { .. })));
        (keeps || ghosts, keeps)
    }

    /// Every pid restart creates with set_tid: the tasks and the ghosts.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.entries.iter().map(|e| e.pid).collect();
        for i in 0..self.entries.len() {
            for b in self.births(i).unwrap_or_default() {
                if let Birth::Ghost { sid, .. } = b {
                    pids.push(sid);
                }
            }
        }
        pids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, tgid: u32, ppid: u32, pgid: u32, sid: u32, refs: u32) -> TreeEntry {
        TreeEntry {
            pid,
            tgid,
            ppid,
            pgid,
            sid,
            exit_signal: 17,
            mm_ref: refs,
            files_ref: refs + 1,
            fs_ref: refs + 2,
            sighand_ref: refs + 3,
            ..TreeEntry::default()
        }
    }

    fn plan(entries: Vec<TreeEntry>) -> Result<Plan, String> {
        Plan::new(&TreeHeader::default(), entries)
    }

    #[test]
    fn a_shell_pipeline_inherits_the_restarters_session() {
        // sh (100) in the caller's session 7, group 7, with two children in the same group.
        let p = plan(vec![
            entry(100, 100, 0, 7, 7, 1),
            entry(101, 101, 100, 7, 7, 5),
            entry(102, 102, 100, 7, 7, 9),
        ])
        .unwrap();
        assert_eq!(p.children(0), vec![1, 2]);
        for i in 0..3 {
            assert_eq!(p.identity(i).unwrap(), Identity::default());
        }
        assert_eq!(
            p.births(0).unwrap(),
            vec![Birth::Direct(1), Birth::Direct(2)]
        );
    }

    #[test]
    fn group_leaders_and_members() {
        // 100 leads session 100; 101 leads group 101, which 102 joins.
        let p = plan(vec![
            entry(100, 100, 0, 100, 100, 1),
            entry(101, 101, 100, 101, 100, 5),
            entry(102, 102, 100, 101, 100, 9),
        ])
        .unwrap();
        assert!(p.identity(0).unwrap().setsid);
        assert!(p.identity(1).unwrap().lead_group);
        assert_eq!(p.identity(2).unwrap().join_group, Some(101));
    }

    #[test]
    fn a_dead_session_leader_gets_a_ghost() {
        // Container init 1; 5 and 6 are in session 3, whose leader exited.
        let p = plan(vec![
            entry(1, 1, 0, 1, 1, 1),
            entry(5, 5, 1, 3, 3, 5),
            entry(6, 6, 1, 3, 3, 9),
        ])
        .unwrap();
        assert_eq!(
            p.births(0).unwrap(),
            vec![Birth::Ghost {
                sid: 3,
                children: vec![1, 2]
            }]
        );
        assert_eq!(p.subreaper(0), (true, false));
        assert!(p.pids().contains(&3));
    }

    #[test]
    fn threads_share_with_their_leader() {
        let mut t = entry(11, 10, 1, 7, 7, 1);
        t.fs_ref = 99;
        let p = plan(vec![entry(10, 10, 0, 7, 7, 1), t]).unwrap();
        assert_eq!(p.threads(0), vec![1]);
        assert_eq!(p.share_flags(0, 1), CLONE_FILES);
    }

    #[test]
    fn unsupported_layouts_are_refused() {
        // Group 50 has no leader in the tree and is not the session.
        assert!(plan(vec![
            entry(100, 100, 0, 100, 100, 1),
            entry(101, 101, 100, 50, 100, 5),
        ])
        .is_err());
        // A child listed before its parent.
        assert!(plan(vec![
            entry(100, 100, 0, 7, 7, 1),
            entry(102, 102, 101, 7, 7, 9),
            entry(101, 101, 100, 7, 7, 5),
        ])
        .is_err());
    }
}
