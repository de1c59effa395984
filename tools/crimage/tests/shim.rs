//! The module's `rust/shim/ffi.rs` declares, for Rust, what `rust/shim.h` defines for C: every
//! function, constant and struct must agree, name for name, type for type, or the kernel would
//! call the shim with the wrong arguments. The compiler cannot see across the two languages, so
//! this test does.

use std::collections::BTreeMap;

const HEADER: &str = include_str!("../../../rust/shim.h");
const FFI: &str = include_str!("../../../rust/shim/ffi.rs");

/// C structs and their Rust mirrors.
const STRUCTS: [(&str, &str); 16] = [
    ("cr_task_info", "TaskInfo"),
    ("cr_mm_info", "MmInfo"),
    ("cr_vma_info", "VmaInfo"),
    ("cr_file_facts", "FileFacts"),
    ("cr_tree_info", "TreeInfo"),
    ("cr_kin", "Kin"),
    ("cr_pipe_info", "PipeInfo"),
    ("cr_event_info", "EventInfo"),
    ("cr_epoll_item", "EpollItem"),
    ("cr_lock_info", "LockInfo"),
    ("cr_shmem_info", "ShmemInfo"),
    ("cr_pending_signal", "PendingSignal"),
    ("cr_restart_info", "RestartInfo"),
    ("cr_page_ref", "PageRef"),
    ("cr_copies_ref", "CopiesRef"),
    ("cr_piece", "Piece"),
];

fn mirror(c: &str) -> String {
    match c {
        "cr_creds_info" => "CredsInfo".into(),
        "task_struct" | "file" | "mm_struct" | "pid_namespace" | "page" => c.into(),
        other => STRUCTS
            .iter()
            .find(|(n, _)| *n == other)
            .map(|(_, r)| r.to_string())
            .unwrap_or_else(|| panic!("no Rust mirror for struct {other}")),
    }
}

/// The Rust spelling of a C type.
fn c_type(t: &str) -> String {
    let t = t.trim();
    let stars = t.matches('*').count();
    let base = t.trim_end_matches(['*', ' ']);
    let is_const = base.starts_with("const ");
    let base = base.trim_start_matches("const ").trim();
    let base = match base {
        "void" if stars > 0 => "c_void".to_string(),
        "void" => return String::new(),
        "int" | "pid_t" => "c_int".into(),
        "long" => "c_long".into(),
        "char" => "c_char".into(),
        "size_t" => "usize".into(),
        "s64" => "i64".into(),
        "u8" | "u32" | "u64" | "bool" => base.into(),
        s if s.starts_with("struct ") => mirror(s.trim_start_matches("struct ")),
        other => panic!("unknown C type {other}"),
    };
    let mut out = base;
    for level in 0..stars {
        // Only the innermost pointer carries the const.
        let ptr = if level == 0 && is_const {
            "*const "
        } else {
            "*mut "
        };
        out = format!("{ptr}{out}");
    }
    out
}

/// The text with C comments removed and whitespace collapsed.
fn squash(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `name -> (parameter types, return type)` of the C prototypes.
fn c_functions() -> BTreeMap<String, (Vec<String>, String)> {
    let mut out = BTreeMap::new();
    let text = squash(HEADER);
    for decl in text.split(';').map(str::trim) {
        let (Some(paren), Some(close)) = (decl.find('('), decl.rfind(')')) else {
            continue;
        };
        let head = &decl[..paren];
        let Some(name_at) = head.rfind("cr_") else {
            continue;
        };
        if head.contains('#') || head.contains('{') || head.contains('}') {
            continue;
        }
        let name = head[name_at..].trim().to_string();
        let ret = c_type(&head[..name_at]);
        let params = decl[paren + 1..close].trim();
        let params = if params == "void" {
            Vec::new()
        } else {
            params
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    let name_start = p.rfind(|c: char| !c.is_alphanumeric() && c != '_').unwrap();
                    c_type(&p[..=name_start])
                })
                .collect()
        };
        out.insert(name, (params, ret));
    }
    out
}

/// The same of the Rust declarations.
fn rust_functions() -> BTreeMap<String, (Vec<String>, String)> {
    let mut out = BTreeMap::new();
    let text = squash(FFI);
    for decl in text.split("pub(crate) fn ").skip(1) {
        let decl = &decl[..decl.find(';').unwrap()];
        let paren = decl.find('(').unwrap();
        let name = decl[..paren].trim().to_string();
        let close = decl.rfind(')').unwrap();
        let ret = decl[close + 1..]
            .trim()
            .trim_start_matches("->")
            .trim()
            .to_string();
        let params = decl[paren + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once(':').unwrap().1.trim().to_string())
            .collect();
        out.insert(name, (params, ret));
    }
    out
}

#[test]
fn every_function_has_the_same_prototype() {
    let c = c_functions();
    let rust = rust_functions();
    assert!(c.len() > 50, "found only {} C prototypes", c.len());
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        rust.keys().collect::<Vec<_>>(),
        "shim.h and ffi.rs declare different functions"
    );
    for (name, proto) in &c {
        assert_eq!(&rust[name], proto, "{name}: ffi.rs differs from shim.h");
    }
}

#[test]
fn every_constant_has_the_same_value() {
    let parse = |v: &str| {
        let v = v.trim();
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    };
    let c: BTreeMap<&str, u64> = HEADER
        .lines()
        .filter_map(|l| l.strip_prefix("#define CR_"))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?, parse(it.next()?)))
        })
        .collect();
    let rust: BTreeMap<&str, u64> = FFI
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub(crate) const CR_"))
        .map(|l| {
            let (name, rest) = l.split_once(':').unwrap();
            (
                name,
                parse(rest.split_once('=').unwrap().1.trim_end_matches(';')),
            )
        })
        .collect();
    assert!(c.len() > 30, "found only {} constants", c.len());
    assert_eq!(c, rust, "shim.h and ffi.rs define different constants");
}

/// The fields of C struct `name`, as (name, Rust type), in order.
fn c_fields(name: &str) -> Vec<(String, String)> {
    let text = squash(HEADER);
    let start = text
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name}"));
    let body = &text[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    let mut fields = Vec::new();
    for stmt in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (ty, names) = match stmt.rfind('*') {
            Some(star) => (c_type(&stmt[..=star]), &stmt[star + 1..]),
            None => {
                let (ty, names) = stmt.split_once(' ').unwrap();
                (c_type(ty), names)
            }
        };
        for n in names.split(',').map(str::trim) {
            match n.split_once('[') {
                Some((n, dim)) => {
                    let dim = dim.trim_end_matches(']');
                    let ty = if ty == "c_char" {
                        "u8".into()
                    } else {
                        ty.clone()
                    };
                    fields.push((n.to_string(), format!("[{ty}; {dim}]")));
                }
                None => fields.push((n.to_string(), ty.clone())),
            }
        }
    }
    fields
}

/// The fields of Rust struct `name`, as (name, type), in order; C's array lengths by name.
fn rust_fields(name: &str) -> Vec<(String, String)> {
    let start = FFI
        .find(&format!("pub(crate) struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name}"));
    let body = &FFI[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pub(crate) "))
        .map(|l| {
            let (n, t) = l
                .trim_start_matches("pub(crate) ")
                .trim_end_matches(',')
                .split_once(':')
                .unwrap();
            (n.trim().to_string(), t.trim().to_string())
        })
        .collect()
}

#[test]
fn every_struct_has_the_same_fields() {
    for (c, rust) in STRUCTS {
        let c_f = c_fields(c);
        let r_f = rust_fields(rust);
        let rename = |n: &str| {
            if n == "type" {
                "type_".to_string()
            } else {
                n.to_string()
            }
        };
        let c_f: Vec<(String, String)> = c_f.into_iter().map(|(n, t)| (rename(&n), t)).collect();
        assert_eq!(c_f, r_f, "struct {c} and its mirror {rust} differ");
    }
}
