//! crinfo as a user runs it: on valid, corrupt, truncated and failed images.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crimage::format::{selfcheck, ImageWriter, RecordKind, KIND_OPTIONAL};
use crimage::VecSink;

fn image(records: &[(u32, &[u8])]) -> Vec<u8> {
    let mut w = ImageWriter::new(VecSink(Vec::new()), &selfcheck::sample_header()).unwrap();
    for (k, p) in records {
        w.record(*k, &[p]).unwrap();
    }
    w.finish().unwrap().0
}

fn crinfo(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crinfo"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn valid_image_as_text() {
    let out = crinfo(&["-"], &image(&[(KIND_OPTIONAL | 3, b"abc")]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let want = format!(
        "header: format {} arch x86_64 page 4096",
        crimage::format::FORMAT_VERSION
    );
    assert!(s.contains(&want), "{s}");
    assert!(s.contains("kernel 7.3.4-cr"), "{s}");
    assert!(s.contains("OPTIONAL(0x3)"), "{s}");
    assert!(s.contains("trailer: 2 records"), "{s}");
    assert!(s.contains(": ok"), "{s}");
}

#[test]
fn valid_image_as_json() {
    let out = crinfo(&["--json"], &image(&[]));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["header"]["arch"], "x86_64");
    assert_eq!(v["header"]["kernel_release"], "7.3.4-cr");
    assert_eq!(v["trailer"]["records"], 1);
    assert!(v["error"].is_null());
}

#[test]
fn corrupt_image_is_rejected_with_offset() {
    let mut img = image(&[(KIND_OPTIONAL | 3, b"abc")]);
    let at = img.len() - 40;
    img[at] ^= 0x40;
    let out = crinfo(&[], &img);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("invalid image: offset"), "{err}");
    assert!(err.contains("checksum mismatch"), "{err}");
}

#[test]
fn truncated_image_is_rejected() {
    let img = image(&[]);
    let out = crinfo(&["--json"], &img[..img.len() - 9]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["message"], "image is truncated");
}

#[test]
fn not_an_image() {
    let out = crinfo(&[], b"#!/bin/sh\necho hello\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a cr image"));
}

#[test]
fn failed_checkpoint_is_shown_and_rejected() {
    let img = image(&[(RecordKind::Error as u32, b"fd 5: socket not supported")]);
    let out = crinfo(&[], &img);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("\"fd 5: socket not supported\""));
    assert!(text(&out.stderr).contains("checkpoint failed"));
}

#[test]
fn usage_errors() {
    assert_eq!(crinfo(&["--bogus"], b"").status.code(), Some(2));
    assert_eq!(crinfo(&["a", "b"], b"").status.code(), Some(2));
    assert_eq!(crinfo(&["/nonexistent/image"], b"").status.code(), Some(2));
    let help = crinfo(&["--help"], b"");
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("usage: crinfo"));
}

#[test]
fn state_records_are_decoded() {
    use crimage::format::{FsRecord, TaskRecord};
    let task = TaskRecord {
        pid: 42,
        tgid: 42,
        blocked: 1 << 9,
        ..TaskRecord::default()
    };
    let mut comm = [0u8; 16];
    comm[..7].copy_from_slice(b"counter");
    let mut task_payload = task.encode().to_vec();
    task_payload.extend_from_slice(&comm);
    let fs = FsRecord {
        umask: 0o22,
        root_len: 1,
        cwd_len: 4,
        reserved: 0,
    };
    let mut fs_payload = fs.encode().to_vec();
    fs_payload.extend_from_slice(b"//tmp");
    let img = image(&[
        (RecordKind::Task as u32, &task_payload),
        (RecordKind::Fs as u32, &fs_payload),
    ]);
    let out = crinfo(&[], &img);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("TASK") && s.contains("comm=counter") && s.contains("pid=42"),
        "{s}"
    );
    assert!(s.contains("cwd=/tmp") && s.contains("umask=0022"), "{s}");
    let out = crinfo(&["--json"], &img);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"][0]["fields"]["comm"], "counter");
    assert_eq!(v["records"][1]["fields"]["root"], "/");
}

#[test]
fn tree_and_objref_graph() {
    use crimage::format::{FileRecord, TaskRecord, TreeEntry, TreeHeader};
    let entry = |pid, tgid, ppid, refs| TreeEntry {
        pid,
        tgid,
        ppid,
        mm_ref: refs,
        files_ref: refs + 1,
        fs_ref: refs + 2,
        sighand_ref: refs + 3,
        ..TreeEntry::default()
    };
    let mut tree = TreeHeader { count: 3, flags: 0 }.encode().to_vec();
    for e in [
        entry(10, 10, 0, 1),
        entry(11, 10, 0, 1),
        entry(12, 12, 10, 5),
    ] {
        tree.extend_from_slice(&e.encode());
    }
    let task = |pid| {
        let mut p = TaskRecord {
            pid,
            tgid: pid,
            ..TaskRecord::default()
        }
        .encode()
        .to_vec();
        p.extend_from_slice(&[0u8; 16]);
        p
    };
    let file = FileRecord {
        kind: crimage::format::file_kind::PIPE,
        objref: 9,
        object: 10,
        ..FileRecord::default()
    }
    .encode();
    let (t10, t12) = (task(10), task(12));
    let img = image(&[
        (RecordKind::Tree as u32, &tree),
        (RecordKind::Task as u32, &t10),
        (RecordKind::File as u32, &file),
        (RecordKind::Task as u32, &t12),
        (RecordKind::File as u32, &file),
    ]);
    let out = crinfo(&[], &img);
    let s = text(&out.stdout);
    assert!(s.contains("tree:\n  10 process"), "{s}");
    assert!(s.contains("    11 thread"), "{s}");
    assert!(s.contains("    12 process ppid=10"), "{s}");
    assert!(s.contains("objref 1 mm: 10 11"), "{s}");
    assert!(s.contains("objref 10 pipe: 10 11 12"), "{s}");
    let out = crinfo(&["--json"], &img);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["graph"]["tree"][1]["thread"], true);
}
