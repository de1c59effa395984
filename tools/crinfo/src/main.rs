//! `crinfo [--json] [IMAGE|-]`: decode a cr image.
//!
//! Prints the header, every record and the trailer check. Exit status: 0 for a complete, valid
//! image; 1 when the image is malformed, truncated or records a failed checkpoint (what could be
//! decoded is still printed, followed by the reason and its offset); 2 for usage errors.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use crimage::format::{self, FormatError, ImageReader, Record, RecordKind, KIND_OPTIONAL};
use crimage::uapi;
use serde_json::{json, Value};

mod fields;
mod graph;

const USAGE: &str = "usage: crinfo [--json] [IMAGE|-]
       crinfo --module [--json]

Decodes a cr checkpoint image: header, records, and the trailer's checksum.
With no IMAGE, or '-', reads standard input.

  --json    one JSON document instead of text
  --module  show what the loaded cr module supports (CR_IOC_VERSION on /dev/cr)
  -h, --help

Exit status: 0 valid image, 1 malformed or incomplete image, 2 usage or I/O error.";

struct Options {
    json: bool,
    module: bool,
    path: Option<String>,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        json: false,
        module: false,
        path: None,
    };
    for a in args {
        match a.as_str() {
            "--json" => o.json = true,
            "--module" => o.module = true,
            "-h" | "--help" => return Err(String::new()),
            "-" => o.path = None,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if o.path.is_none() => o.path = Some(s.to_string()),
            _ => return Err("more than one image".into()),
        }
    }
    Ok(o)
}

/// What crinfo learned from an image.
struct Decoded {
    header: Option<format::Header>,
    records: Vec<Value>,
    trailer: Option<format::Trailer>,
    error: Option<FormatError>,
}

fn kind_name(kind: u32) -> String {
    match RecordKind::from_u32(kind) {
        Some(k) => k.name().to_string(),
        None if kind & KIND_OPTIONAL != 0 => format!("OPTIONAL({:#x})", kind & !KIND_OPTIONAL),
        None => format!("UNKNOWN({kind:#x})"),
    }
}

fn describe(rec: &Record<'_>) -> Value {
    let mut v = json!({
        "offset": rec.offset,
        "kind": kind_name(rec.kind),
        "len": rec.payload.len(),
    });
    if let Some(kind) = rec.known_kind() {
        match fields::decode(kind, rec.payload) {
            Ok(Value::Null) => {}
            Ok(f) => v["fields"] = f,
            Err(e) => v["fields"] = json!({ "malformed": e.to_string() }),
        }
    }
    if rec.known_kind() == Some(RecordKind::Error) {
        v["message"] = json!(format::decode_error_message(rec.payload).unwrap_or("?"));
    }
    v
}

/// One line of text for a record's decoded fields.
fn fields_text(f: &Value) -> String {
    match f {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_array() && !v.is_object())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn decode(bytes: &[u8]) -> Decoded {
    let mut d = Decoded {
        header: None,
        records: Vec::new(),
        trailer: None,
        error: None,
    };
    let mut reader = match ImageReader::new(bytes) {
        Ok(r) => r,
        Err(e) => {
            d.error = Some(e);
            return d;
        }
    };
    d.header = Some(reader.header());
    for rec in &mut reader {
        match rec {
            Ok(rec) => {
                if rec.known_kind() == Some(RecordKind::Error) && d.error.is_none() {
                    d.error = Some(FormatError {
                        offset: rec.offset,
                        kind: format::ErrorKind::CheckpointFailed,
                    });
                }
                d.records.push(describe(&rec));
            }
            Err(e) => {
                d.error = Some(e);
                return d;
            }
        }
    }
    d.trailer = reader.trailer();
    if d.trailer.is_none() && d.error.is_none() {
        d.error = Some(FormatError {
            offset: bytes.len() as u64,
            kind: format::ErrorKind::Truncated,
        });
    }
    d
}

fn arch_name(arch: u32) -> &'static str {
    match arch {
        format::ARCH_X86_64 => "x86_64",
        _ => "unknown",
    }
}

fn header_json(h: &format::Header) -> Value {
    json!({
        "format_version": h.format_version,
        "arch": arch_name(h.arch),
        "flags": h.flags,
        "page_size": h.page_size,
        "xstate_size": h.xstate_size,
        "xfeatures": format!("{:#x}", h.xfeatures),
        "time_ns": h.time_ns,
        "kernel_release": h.release_str(),
    })
}

fn to_json(d: &Decoded) -> Value {
    json!({
        "valid": d.error.is_none(),
        "header": d.header.as_ref().map(header_json),
        "records": d.records,
        "graph": graph::build(&d.records),
        "trailer": d.trailer.map(|t| json!({
            "records": t.records,
            "stream_len": t.stream_len,
            "crc32c": format!("{:#010x}", t.crc32c),
        })),
        "error": d.error.map(|e| json!({ "offset": e.offset, "message": e.kind.to_string() })),
    })
}

fn to_text(d: &Decoded, out: &mut impl Write) -> io::Result<()> {
    if let Some(h) = &d.header {
        writeln!(
            out,
            "header: format {} arch {} page {} xstate {} bytes (xfeatures {:#x}) kernel {} time {}",
            h.format_version,
            arch_name(h.arch),
            h.page_size,
            h.xstate_size,
            h.xfeatures,
            h.release_str(),
            h.time_ns
        )?;
    }
    for r in &d.records {
        write!(
            out,
            "  @{:<10} {:<20} {:>9} bytes",
            r["offset"],
            r["kind"].as_str().unwrap_or(""),
            r["len"]
        )?;
        if let Some(m) = r.get("message").and_then(Value::as_str) {
            write!(out, "  {m:?}")?;
        } else if let Some(f) = r.get("fields") {
            write!(out, "  {}", fields_text(f))?;
        }
        writeln!(out)?;
    }
    graph::write_text(&graph::build(&d.records), out)?;
    if let Some(t) = &d.trailer {
        writeln!(
            out,
            "trailer: {} records, {} bytes, crc32c {:#010x}: ok",
            t.records, t.stream_len, t.crc32c
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("crinfo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if opts.module {
        return show_module(opts.json);
    }
    let name = opts.path.clone().unwrap_or_else(|| "-".into());
    let mut bytes = Vec::new();
    let read = match &opts.path {
        Some(p) => std::fs::File::open(p).and_then(|mut f| f.read_to_end(&mut bytes)),
        None => io::stdin().read_to_end(&mut bytes),
    };
    if let Err(e) = read {
        eprintln!("crinfo: {name}: {e}");
        return ExitCode::from(2);
    }
    let d = decode(&bytes);
    let stdout = &mut io::stdout().lock();
    let written = if opts.json {
        writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&to_json(&d)).unwrap_or_default()
        )
    } else {
        to_text(&d, stdout)
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    match d.error {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("crinfo: {name}: invalid image: {e}");
            ExitCode::from(1)
        }
    }
}

/// Asks the loaded module what it supports.
fn query_module() -> io::Result<uapi::Version> {
    use std::os::fd::AsRawFd;
    let dev = std::fs::File::open("/dev/cr")?;
    let mut buf = [0u8; uapi::Version::SIZE_V1];
    // SAFETY: CR_IOC_VERSION writes exactly `SIZE_V1` bytes (its encoded size) to the pointer,
    // which points to a buffer of that size that lives across the call.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), uapi::IOC_VERSION as _, buf.as_mut_ptr()) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uapi::Version::from_bytes(&buf))
}

fn show_module(json: bool) -> ExitCode {
    let v = match query_module() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("crinfo: /dev/cr: {e} (is cr.ko loaded?)");
            return ExitCode::from(2);
        }
    };
    if json {
        let doc = json!({
            "abi_version": v.abi_version,
            "image_version": v.image_version,
            "image_version_min": v.image_version_min,
            "arch": arch_name(v.arch),
            "features": format!("{:#x}", v.features),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "cr module: abi {} image format {}..={} arch {} features {:#x}",
            v.abi_version,
            v.image_version_min,
            v.image_version,
            arch_name(v.arch),
            v.features
        );
    }
    ExitCode::SUCCESS
}
