//! The plan for recreating an image's process tree, after linux-cr's MakeForest: which task
//! creates which, with which clone flags, which sessions need a ghost leader, and which
//! process groups each task joins. Pure logic, so it is tested on the host; `restart` carries
//! it out.

use std::collections::HashMap;

pub use crimage::forest_rules::{Identity, Problem};
use crimage::forest_rules::{Lineage, ProcessIndex};
use crimage::format::{entry_flags, tree_flags, TreeEntry, TreeHeader};

/// `CLONE_FS`, `CLONE_FILES`.
pub const CLONE_FS: u64 = 0x200;
/// `CLONE_FILES`.
pub const CLONE_FILES: u64 = 0x400;

/// Children a process creates: directly, or through a ghost that leads their (dead) session.
#[derive(Debug, PartialEq, Eq)]
pub enum Birth {
    /// clone3 by the parent itself.
    Direct(usize),
    /// A ghost with pid `sid` calls setsid(), creates these children, and exits; the parent,
    /// a subreaper meanwhile, adopts them.
    Ghost { sid: u32, children: Vec<usize> },
}

/// The tree of an image and what restart must do to recreate it. The rules themselves are the
/// kernel module's (`forest_rules`), which refuses at checkpoint what they would refuse here.
pub struct Plan {
    pub entries: Vec<TreeEntry>,
    pub container: bool,
    /// Entry index of each process, by pid.
    processes: Processes,
}

struct Processes(HashMap<u32, usize>);

impl ProcessIndex for Processes {
    fn process(&self, pid: u32) -> Option<usize> {
        self.0.get(&pid).copied()
    }
}

impl Plan {
    /// Checks that the tree is one restart can recreate.
    pub fn new(head: &TreeHeader, entries: Vec<TreeEntry>) -> Result<Self, Problem> {
        let processes = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_thread())
            .map(|(i, e)| (e.pid, i))
            .collect();
        let processes = Processes(processes);
        let plan = Plan {
            entries,
            container: head.flags & tree_flags::CONTAINER != 0,
            processes,
        };
        plan.lineage()?.check()?;
        Ok(plan)
    }

    fn lineage(&self) -> Result<Lineage<'_>, Problem> {
        Lineage::new(&self.entries, self.container, &self.processes)
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
    pub fn identity(&self, i: usize) -> Result<Identity, Problem> {
        self.lineage()?.identity(i)
    }

    fn ghost_of(&self, c: usize) -> Result<Option<u32>, Problem> {
        self.lineage()?.ghost_of(c)
    }

    /// How process `i` creates its children: directly, or grouped under ghosts.
    pub fn births(&self, i: usize) -> Result<Vec<Birth>, Problem> {
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

    fn plan(entries: Vec<TreeEntry>) -> Result<Plan, Problem> {
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
