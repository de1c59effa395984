//! The process tree and the objref graph of an image: who is whose parent, and which tasks
//! share which object.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};

/// One objref: what it is, where it was defined, which tasks use it.
struct Object {
    kind: &'static str,
    users: Vec<u64>,
}

fn push_user(o: &mut Object, pid: u64) {
    if !o.users.contains(&pid) {
        o.users.push(pid);
    }
}

/// Builds `{"tree": [...], "objects": [...]}` from the decoded records.
pub fn build(records: &[Value]) -> Value {
    let mut tasks: Vec<Value> = Vec::new();
    let mut objects: BTreeMap<u64, Object> = BTreeMap::new();
    let mut note = |id: u64, kind: &'static str, pid: u64| {
        if id == 0 {
            return;
        }
        let o = objects.entry(id).or_insert(Object {
            kind,
            users: Vec::new(),
        });
        push_user(o, pid);
    };
    // The tasks that share a descriptor table or address space use what its section defines.
    let mut sharers: BTreeMap<(&'static str, u64), Vec<u64>> = BTreeMap::new();
    let mut current: Option<Value> = None;
    for r in records {
        let f = &r["fields"];
        match r["kind"].as_str() {
            Some("TREE") => {
                for e in f["entries"].as_array().into_iter().flatten() {
                    let pid = e["pid"].as_u64().unwrap_or(0);
                    for (key, kind) in [
                        ("mm", "mm"),
                        ("files", "files"),
                        ("fs", "fs"),
                        ("sighand", "sighand"),
                    ] {
                        let id = e[key].as_u64().unwrap_or(0);
                        note(id, kind, pid);
                        sharers.entry((kind, id)).or_default().push(pid);
                    }
                    tasks.push(e.clone());
                }
            }
            Some("TASK") => current = Some(f.clone()),
            Some(kind @ ("FILE" | "VMA")) => {
                let Some(task) = &current else { continue };
                let pid = task["pid"].as_u64().unwrap_or(0);
                let owner = tasks.iter().find(|t| t["pid"].as_u64() == Some(pid));
                let (share_kind, share_key) = if kind == "FILE" {
                    ("files", "files")
                } else {
                    ("mm", "mm")
                };
                let users = owner
                    .and_then(|t| t[share_key].as_u64())
                    .and_then(|id| sharers.get(&(share_kind, id)).cloned())
                    .unwrap_or_else(|| vec![pid]);
                let object_kind = match f["type"].as_str() {
                    Some("pipe") => "pipe",
                    Some("shmem") => "shmem",
                    _ => "",
                };
                for u in users {
                    if kind == "FILE" {
                        note(f["objref"].as_u64().unwrap_or(0), "file", u);
                    }
                    if !object_kind.is_empty() {
                        note(f["object"].as_u64().unwrap_or(0), object_kind, u);
                    }
                }
            }
            _ => {}
        }
    }
    let objects: Vec<Value> = objects
        .into_iter()
        .map(|(id, o)| json!({"objref": id, "kind": o.kind, "users": o.users}))
        .collect();
    json!({"tree": tasks, "objects": objects})
}

/// The tree, indented by depth, then every object used by more than one task.
pub fn write_text(graph: &Value, out: &mut impl Write) -> io::Result<()> {
    let tasks = graph["tree"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        return Ok(());
    }
    writeln!(out, "tree:")?;
    let depth_of = |mut pid: u64| {
        let mut depth = 0;
        while let Some(t) = tasks.iter().find(|t| t["pid"].as_u64() == Some(pid)) {
            let parent = if t["thread"].as_bool() == Some(true) {
                t["tgid"].as_u64().unwrap_or(0)
            } else {
                t["ppid"].as_u64().unwrap_or(0)
            };
            if parent == 0 || depth > tasks.len() {
                break;
            }
            depth += 1;
            pid = parent;
        }
        depth
    };
    for t in &tasks {
        let pid = t["pid"].as_u64().unwrap_or(0);
        let what = if t["zombie"].as_bool() == Some(true) {
            format!(
                "zombie (status {:#x})",
                t["exit_status"].as_u64().unwrap_or(0)
            )
        } else if t["thread"].as_bool() == Some(true) {
            "thread".to_string()
        } else {
            "process".to_string()
        };
        writeln!(
            out,
            "  {:indent$}{pid} {what} ppid={} pgid={} sid={}",
            "",
            t["ppid"],
            t["pgid"],
            t["sid"],
            indent = 2 * depth_of(pid)
        )?;
    }
    let shared: Vec<&Value> = graph["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["users"].as_array().is_some_and(|u| u.len() > 1))
        .collect();
    if !shared.is_empty() {
        writeln!(out, "shared objects:")?;
        for o in shared {
            let users: Vec<String> = o["users"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| u.to_string())
                .collect();
            writeln!(
                out,
                "  objref {} {}: {}",
                o["objref"],
                o["kind"].as_str().unwrap_or("?"),
                users.join(" ")
            )?;
        }
    }
    Ok(())
}
