//! Decoding of each state record's fields, for text and JSON output.

use crimage::format::{
    self, entry_flags, file_kind, restart_kind, shmem_kind, task_flags, tree_flags, vma_kind,
    CredsRecord, ErrorKind, FileRecord, FsRecord, ItimersRecord, MmRecord, PagesHeader,
    PendingHeader, PipeRecord, RecordKind, RegsRecord, Rlimit, ShmemRecord, SigAction, TaskRecord,
    TreeEntry, TreeHeader, UtsRecord, VmaRecord, COMM_LEN, SIGINFO_LEN, USER_REGS_LEN,
};
use serde_json::{json, Value};

fn path_str(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Order of `struct user_regs_struct` on x86_64.
const REG_NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

fn vma_flags(f: u64) -> String {
    let bit = |b: u64, c: char| if f & b != 0 { c } else { '-' };
    format!(
        "{}{}{}{}",
        bit(1, 'r'),
        bit(2, 'w'),
        bit(4, 'x'),
        if f & 8 != 0 { 's' } else { 'p' }
    )
}

/// The fields of a record of `kind`, or `Value::Null` for kinds without any.
pub fn decode(kind: RecordKind, p: &[u8]) -> Result<Value, ErrorKind> {
    Ok(match kind {
        RecordKind::Header | RecordKind::Trailer | RecordKind::Error => Value::Null,
        RecordKind::Tree => {
            let (h, rest) = format::split_fixed(kind, p, TreeHeader::LEN, TreeHeader::decode)?;
            let tasks: Vec<Value> = rest
                .chunks(TreeEntry::LEN)
                .take(h.count as usize)
                .filter_map(TreeEntry::decode)
                .map(|e| {
                    json!({
                        "pid": e.pid, "tgid": e.tgid, "ppid": e.ppid, "pgid": e.pgid,
                        "sid": e.sid, "thread": e.is_thread(), "zombie": e.is_zombie(),
                        "subreaper": e.flags & entry_flags::SUBREAPER != 0,
                        "exit_signal": e.exit_signal as i32, "exit_status": e.exit_status,
                        "mm": e.mm_ref, "files": e.files_ref, "fs": e.fs_ref,
                        "sighand": e.sighand_ref,
                    })
                })
                .collect();
            let first = tasks.first().cloned().unwrap_or(Value::Null);
            json!({
                "tasks": h.count, "container": h.flags & tree_flags::CONTAINER != 0,
                "pid": first["pid"], "ppid": first["ppid"], "pgid": first["pgid"],
                "sid": first["sid"], "entries": tasks,
            })
        }
        RecordKind::Uts => {
            let (u, rest) = format::split_fixed(kind, p, UtsRecord::LEN, UtsRecord::decode)?;
            let n = (u.nodename_len as usize).min(rest.len());
            let d = (u.domainname_len as usize).min(rest.len() - n);
            json!({"nodename": path_str(&rest[..n]), "domainname": path_str(&rest[n..n + d])})
        }
        RecordKind::Pipe => {
            let (r, _) = format::split_fixed(kind, p, PipeRecord::LEN, PipeRecord::decode)?;
            json!({"objref": r.objref, "capacity": r.capacity, "buffered": r.data_len})
        }
        RecordKind::Shmem => {
            let (r, name) = format::split_fixed(kind, p, ShmemRecord::LEN, ShmemRecord::decode)?;
            let what = match r.kind {
                shmem_kind::MEMFD => "memfd",
                shmem_kind::ANON => "shared anonymous",
                shmem_kind::UNLINKED => "unlinked tmpfs file",
                _ => "?",
            };
            json!({
                "objref": r.objref, "kind": what, "size": r.size, "name": path_str(name),
                "mode": format!("{:o}", r.mode), "uid": r.uid, "gid": r.gid,
                "seals": hex(r.seals.into()), "mtime_ns": r.mtime_ns,
            })
        }
        RecordKind::Task => {
            let (t, comm) = format::split_fixed(kind, p, TaskRecord::LEN, TaskRecord::decode)?;
            let comm = &comm[..comm.len().min(COMM_LEN)];
            let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
            json!({
                "pid": t.pid, "tgid": t.tgid, "comm": path_str(&comm[..end]), "personality": hex(t.personality.into()),
                "blocked": hex(t.blocked), "sigaltstack": hex(t.sas_ss_sp),
                "sigaltstack_size": t.sas_ss_size, "robust_list": hex(t.robust_list),
                "clear_child_tid": hex(t.clear_child_tid), "pdeath_signal": t.pdeath_signal,
                "dumpable": t.dumpable,
                "no_new_privs": t.flags & task_flags::NO_NEW_PRIVS != 0,
            })
        }
        RecordKind::Creds => {
            let (c, groups) = format::split_fixed(kind, p, CredsRecord::LEN, CredsRecord::decode)?;
            let groups: Vec<u32> = (0..c.ngroups as usize)
                .filter(|i| (i + 1) * 4 <= groups.len())
                .map(|i| format::u32_at(groups, i))
                .collect();
            json!({
                "uid": c.uid, "euid": c.euid, "gid": c.gid, "egid": c.egid,
                "ngroups": c.ngroups, "cap_effective": hex(c.cap_effective),
                "cap_permitted": hex(c.cap_permitted), "groups": groups,
            })
        }
        RecordKind::Rlimits => {
            let limits: Vec<Value> = p
                .chunks_exact(Rlimit::LEN)
                .filter_map(Rlimit::decode)
                .map(|r| json!([r.cur, r.max]))
                .collect();
            json!({"count": limits.len(), "limits": limits})
        }
        RecordKind::Sighand => {
            let actions: Vec<SigAction> = p
                .chunks_exact(SigAction::LEN)
                .filter_map(SigAction::decode)
                .collect();
            let handled: Vec<usize> = actions
                .iter()
                .enumerate()
                .filter(|(_, a)| a.handler != 0)
                .map(|(i, _)| i + 1)
                .collect();
            json!({"non_default": handled.len(), "signals": handled})
        }
        RecordKind::SigPending => {
            let (h, rest) =
                format::split_fixed(kind, p, PendingHeader::LEN, PendingHeader::decode)?;
            let signals: Vec<u32> = rest
                .chunks(8 + SIGINFO_LEN)
                .map(|c| format::u32_at(c, 0))
                .collect();
            json!({"queue": if h.shared == 1 { "shared" } else { "task" }, "count": h.count, "signals": signals})
        }
        RecordKind::Itimers => {
            let t = format::exact_fixed(kind, p, ItimersRecord::LEN, ItimersRecord::decode)?;
            json!({"real_value_ns": t.real_value_ns, "real_interval_ns": t.real_interval_ns})
        }
        RecordKind::Fs => {
            let (f, rest) = format::split_fixed(kind, p, FsRecord::LEN, FsRecord::decode)?;
            let (root, rest) = format::take_path(rest, f.root_len)?;
            let (cwd, _) = format::take_path(rest, f.cwd_len)?;
            json!({"umask": format!("{:04o}", f.umask), "root": path_str(root), "cwd": path_str(cwd)})
        }
        RecordKind::File => {
            let (f, rest) = format::split_fixed(kind, p, FileRecord::LEN, FileRecord::decode)?;
            let path = match f.path_len {
                0 => &[][..],
                n => format::take_path(rest, n)?.0,
            };
            let kind = match f.kind {
                file_kind::REGULAR => "regular",
                file_kind::DIRECTORY => "directory",
                file_kind::MEMORY_DEVICE => "memdev",
                file_kind::TTY => "tty",
                file_kind::PIPE => "pipe",
                file_kind::SHMEM => "shmem",
                _ => "unknown",
            };
            json!({
                "fd": f.fd, "type": kind, "path": path_str(path), "pos": f.pos,
                "flags": format!("{:#o}", f.flags), "cloexec": f.cloexec == 1, "ino": f.ino,
                "objref": f.objref, "object": f.object,
            })
        }
        RecordKind::Mm => {
            let (m, rest) = format::split_fixed(kind, p, MmRecord::LEN, MmRecord::decode)?;
            let (_, rest) = format::take_u64s(rest, m.auxv_words as usize)?;
            let (exe, _) = format::take_path(rest, m.exe_len)?;
            json!({
                "exe": path_str(exe), "start_code": hex(m.start_code), "start_brk": hex(m.start_brk),
                "brk": hex(m.brk), "start_stack": hex(m.start_stack), "vdso": hex(m.vdso),
                "auxv_words": m.auxv_words,
            })
        }
        RecordKind::Vma => {
            let (v, rest) = format::split_fixed(kind, p, VmaRecord::LEN, VmaRecord::decode)?;
            let path = if v.path_len > 0 {
                path_str(format::take_path(rest, v.path_len)?.0)
            } else {
                String::new()
            };
            let kind = match v.kind {
                vma_kind::ANON => "anon",
                vma_kind::FILE_PRIVATE => "file",
                vma_kind::VDSO => "vdso",
                vma_kind::VVAR => "vvar",
                vma_kind::SHMEM => "shmem",
                vma_kind::FILE_SHARED => "file-shared",
                _ => "unknown",
            };
            json!({
                "range": format!("{:x}-{:x}", v.start, v.end), "prot": vma_flags(v.vm_flags),
                "type": kind, "pgoff": v.pgoff, "path": path, "object": v.object,
            })
        }
        RecordKind::Pages => {
            let (h, rest) = format::split_fixed(kind, p, PagesHeader::LEN, PagesHeader::decode)?;
            let (addrs, _) = format::take_u64s(rest, h.count as usize)?;
            let first = if h.count > 0 {
                format::u64_at(addrs, 0)
            } else {
                0
            };
            json!({"pages": h.count, "first": hex(first)})
        }
        RecordKind::Regs => {
            let (r, regs) = format::split_fixed(kind, p, RegsRecord::LEN, RegsRecord::decode)?;
            let mut v = json!({
                "restart": match r.restart_kind {
                    restart_kind::NONE => "none",
                    restart_kind::NANOSLEEP => "nanosleep",
                    _ => "unknown",
                },
            });
            if regs.len() == USER_REGS_LEN {
                for (i, name) in REG_NAMES.iter().enumerate() {
                    if matches!(*name, "rip" | "rsp" | "rax" | "orig_rax" | "fs_base") {
                        v[*name] = json!(hex(format::u64_at(regs, i)));
                    }
                }
            }
            v
        }
        RecordKind::Xstate => json!({"bytes": p.len()}),
    })
}
