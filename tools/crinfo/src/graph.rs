//! The process tree and the objref graph of an image: who is whose parent, and which tasks
//! share which object. Built as the records stream by.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::fields::{Fields, Task};

/// One objref: what it is and which tasks use it.
#[derive(Serialize)]
pub struct Object {
    objref: u32,
    kind: &'static str,
    users: Vec<u32>,
}

/// The tree and the objects, in JSON as `{"tree": [...], "objects": [...]}`.
#[derive(Default, Serialize)]
pub struct Graph {
    tree: Vec<Task>,
    objects: Vec<Object>,
}

/// Collects the graph from the records, one at a time.
#[derive(Default)]
pub struct Builder {
    tasks: Vec<Task>,
    objects: BTreeMap<u32, (&'static str, Vec<u32>)>,
    /// The tasks that share each TREE object: they all use what its section defines.
    sharers: BTreeMap<(&'static str, u32), Vec<u32>>,
    current: Option<u32>,
}

impl Builder {
    fn note(&mut self, id: u32, kind: &'static str, pid: u32) {
        if id == 0 {
            return;
        }
        let users = &mut self.objects.entry(id).or_insert((kind, Vec::new())).1;
        if !users.contains(&pid) {
            users.push(pid);
        }
    }

    /// Takes one record's fields into account.
    pub fn add(&mut self, fields: &Fields) {
        match fields {
            Fields::Tree(t) => {
                for e in &t.entries {
                    for (kind, id) in [
                        ("mm", e.mm),
                        ("files", e.files),
                        ("fs", e.fs),
                        ("sighand", e.sighand),
                    ] {
                        self.note(id, kind, e.pid);
                        self.sharers.entry((kind, id)).or_default().push(e.pid);
                    }
                    self.tasks.push(e.clone());
                }
            }
            Fields::Task(t) => self.current = Some(t.pid),
            Fields::File(f) => self.add_use("files", f.objref, f.kind, f.object),
            Fields::Vma(v) => self.add_use("mm", 0, v.kind, v.object),
            _ => {}
        }
    }

    /// A FILE or VMA of the current section: its open file (`objref`) and the object it opens
    /// or maps, used by every task that shares the section's descriptor table or address space.
    fn add_use(&mut self, shared: &'static str, objref: u32, kind: &'static str, object: u32) {
        let Some(pid) = self.current else { return };
        let table = self.tasks.iter().find(|t| t.pid == pid).map(|t| {
            if shared == "files" {
                t.files
            } else {
                t.mm
            }
        });
        let users = table
            .and_then(|id| self.sharers.get(&(shared, id)).cloned())
            .unwrap_or_else(|| vec![pid]);
        let object_kind = match kind {
            "pipe" | "fifo" => "pipe",
            "shmem" => "shmem",
            "event" => "event",
            _ => "",
        };
        for u in users {
            if shared == "files" {
                self.note(objref, "file", u);
            }
            if !object_kind.is_empty() {
                self.note(object, object_kind, u);
            }
        }
    }

    /// The graph.
    pub fn finish(self) -> Graph {
        Graph {
            tree: self.tasks,
            objects: self
                .objects
                .into_iter()
                .map(|(objref, (kind, users))| Object {
                    objref,
                    kind,
                    users,
                })
                .collect(),
        }
    }
}

impl Graph {
    /// The tree, indented by depth, then every object used by more than one task.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let tasks = &self.tree;
        if tasks.is_empty() {
            return Ok(());
        }
        writeln!(out, "tree:")?;
        let by_pid: BTreeMap<u32, &Task> = tasks.iter().map(|t| (t.pid, t)).collect();
        let depth_of = |mut pid: u32| {
            let mut depth = 0;
            while let Some(t) = by_pid.get(&pid) {
                let parent = if t.thread { t.tgid } else { t.ppid };
                if parent == 0 || depth > tasks.len() {
                    break;
                }
                depth += 1;
                pid = parent;
            }
            depth
        };
        for t in tasks {
            let what = if t.zombie {
                format!("zombie (status {:#x})", t.exit_status)
            } else if t.thread {
                "thread".to_string()
            } else {
                "process".to_string()
            };
            writeln!(
                out,
                "  {:indent$}{} {what} ppid={} pgid={} sid={}",
                "",
                t.pid,
                t.ppid,
                t.pgid,
                t.sid,
                indent = 2 * depth_of(t.pid)
            )?;
        }
        let shared: Vec<&Object> = self.objects.iter().filter(|o| o.users.len() > 1).collect();
        if !shared.is_empty() {
            writeln!(out, "shared objects:")?;
            for o in shared {
                let users: Vec<String> = o.users.iter().map(u32::to_string).collect();
                writeln!(out, "  objref {} {}: {}", o.objref, o.kind, users.join(" "))?;
            }
        }
        Ok(())
    }
}
