//! `crinfo [--json] [IMAGE|-]`: decode a cr image.
//!
//! Prints the header, every record and the trailer check; for a thawed checkpoint's stream, the
//! precopy image and then the frozen round's (with --json, one document each). Exit status: 0
//! for a complete, valid image; 1 when the image is malformed, truncated or records a failed
//! checkpoint (what could be decoded is still printed, followed by the reason and its offset); 2
//! for usage errors.
//!
//! With --chain, crinfo lists an incremental image's chain instead: the image, then each parent
//! as restart would find it (by its recorded path, or in a --parent-dir), checked whole.
//!
//! The image is read as a stream, record by record, with the module's own validator and
//! decoders: a text listing is printed as it goes, and nothing but the current record is held.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::Parser;
use crimage::format::{
    self, ErrorKind, FormatError, Header, RecordKind, StreamValidator, Trailer, KIND_OPTIONAL,
    MAGIC, RECORD_HEADER_LEN,
};
use crimage::uapi;
use serde::Serialize;

mod fields;
mod graph;

use fields::Fields;

/// Decodes a cr checkpoint image: header, records, and the trailer's checksum. With no IMAGE,
/// or '-', reads standard input.
///
/// Exit status: 0 valid image, 1 malformed or incomplete image, 2 usage or I/O error.
#[derive(Parser)]
#[command(
    name = "crinfo",
    override_usage = "crinfo [--json] [IMAGE|-]\n       crinfo --chain [--json] [--parent-dir DIR] IMAGE\n       crinfo --module [--json]",
    help_template = "usage: {usage}\n\n{about}\n\n{all-args}"
)]
struct Args {
    /// One JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Show what the loaded cr module supports (CR_IOC_VERSION on /dev/cr).
    #[arg(long)]
    module: bool,
    /// List the chain of parents of an incremental image, each found and checked.
    #[arg(long, requires = "image")]
    chain: bool,
    /// With --chain: where to look for a parent not at its recorded path (repeatable).
    #[arg(long, value_name = "DIR", requires = "chain")]
    parent_dir: Vec<std::path::PathBuf>,
    /// The image; '-' or none for standard input.
    image: Option<String>,
}

/// Why crinfo stops: an image that is not valid, or a problem before any image is read.
enum Failure {
    /// Exit 1: the image is malformed or incomplete.
    Invalid(FormatError),
    /// Exit 2: the image (or /dev/cr) cannot be read, or the output written.
    Io(String),
}

impl Failure {
    fn exit(&self, name: &str) -> ExitCode {
        match self {
            Failure::Invalid(e) => {
                eprintln!("crinfo: {name}: invalid image: {e}");
                ExitCode::from(1)
            }
            Failure::Io(msg) => {
                eprintln!("crinfo: {msg}");
                ExitCode::from(2)
            }
        }
    }
}

/// What a record's `fields` show: its decoded fields, or why they do not decode.
#[derive(Serialize)]
#[serde(untagged)]
enum Shown {
    Fields(Fields),
    Malformed { malformed: String },
}

/// One record, as listed.
#[derive(Serialize)]
struct Listed {
    offset: u64,
    kind: String,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

fn kind_name(kind: u32) -> String {
    match RecordKind::from_u32(kind) {
        Some(k) => k.name().to_string(),
        None if kind & KIND_OPTIONAL != 0 => format!("OPTIONAL({:#x})", kind & !KIND_OPTIONAL),
        None => format!("UNKNOWN({kind:#x})"),
    }
}

fn arch_name(arch: u32) -> &'static str {
    match arch {
        format::ARCH_X86_64 => "x86_64",
        _ => "unknown",
    }
}

/// Where the listing goes: text as it is decoded, or JSON at the end.
trait Listing {
    fn header(&mut self, h: &Header) -> io::Result<()>;
    fn record(&mut self, r: Listed) -> io::Result<()>;
    fn end(
        &mut self,
        graph: graph::Graph,
        trailer: Option<&Trailer>,
        error: Option<&FormatError>,
    ) -> io::Result<()>;
}

struct TextListing<W: Write>(W);

impl<W: Write> Listing for TextListing<W> {
    fn header(&mut self, h: &Header) -> io::Result<()> {
        writeln!(
            self.0,
            "header: format {}{} arch {} page {} xstate {} bytes (xfeatures {:#x}) kernel {} time {}",
            h.format_version,
            if h.flags & format::header_flags::PRECOPY != 0 {
                " precopy"
            } else {
                ""
            },
            arch_name(h.arch),
            h.page_size,
            h.xstate_size,
            h.xfeatures,
            h.release_str(),
            h.time_ns
        )
    }

    fn record(&mut self, r: Listed) -> io::Result<()> {
        write!(
            self.0,
            "  @{:<10} {:<20} {:>9} bytes",
            r.offset, r.kind, r.len
        )?;
        if let Some(m) = &r.message {
            write!(self.0, "  {m:?}")?;
        } else if let Some(f) = &r.fields {
            // The scalar fields, by name, as `name=value`.
            if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(f) {
                let pairs: Vec<String> = m
                    .iter()
                    .filter(|(_, v)| !v.is_array() && !v.is_object())
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                write!(self.0, "  {}", pairs.join(" "))?;
            }
        }
        writeln!(self.0)
    }

    fn end(
        &mut self,
        graph: graph::Graph,
        trailer: Option<&Trailer>,
        _error: Option<&FormatError>,
    ) -> io::Result<()> {
        graph.write_text(&mut self.0)?;
        if let Some(t) = trailer {
            writeln!(
                self.0,
                "trailer: {} records, {} bytes, xxh64 {:#018x}: ok",
                t.records, t.stream_len, t.xxh64
            )?;
        }
        Ok(())
    }
}

/// The whole image as one JSON document.
#[derive(Serialize)]
struct JsonImage {
    valid: bool,
    header: Option<JsonHeader>,
    records: Vec<Listed>,
    graph: graph::Graph,
    trailer: Option<JsonTrailer>,
    error: Option<JsonError>,
}

#[derive(Serialize)]
struct JsonHeader {
    format_version: u32,
    arch: &'static str,
    flags: u32,
    page_size: u32,
    xstate_size: u32,
    xfeatures: String,
    time_ns: u64,
    kernel_release: String,
}

#[derive(Serialize)]
struct JsonTrailer {
    records: u32,
    stream_len: u64,
    xxh64: String,
}

#[derive(Serialize)]
struct JsonError {
    offset: u64,
    message: String,
}

struct JsonListing<W: Write> {
    out: W,
    header: Option<JsonHeader>,
    records: Vec<Listed>,
}

impl<W: Write> Listing for JsonListing<W> {
    fn header(&mut self, h: &Header) -> io::Result<()> {
        self.header = Some(JsonHeader {
            format_version: h.format_version,
            arch: arch_name(h.arch),
            flags: h.flags,
            page_size: h.page_size,
            xstate_size: h.xstate_size,
            xfeatures: format!("{:#x}", h.xfeatures),
            time_ns: h.time_ns,
            kernel_release: h.release_str().to_string(),
        });
        Ok(())
    }

    fn record(&mut self, r: Listed) -> io::Result<()> {
        self.records.push(r);
        Ok(())
    }

    fn end(
        &mut self,
        graph: graph::Graph,
        trailer: Option<&Trailer>,
        error: Option<&FormatError>,
    ) -> io::Result<()> {
        let doc = JsonImage {
            valid: error.is_none(),
            header: self.header.take(),
            records: std::mem::take(&mut self.records),
            graph,
            trailer: trailer.map(|t| JsonTrailer {
                records: t.records,
                stream_len: t.stream_len,
                xxh64: format!("{:#018x}", t.xxh64),
            }),
            error: error.map(|e| JsonError {
                offset: e.offset,
                message: e.kind.to_string(),
            }),
        };
        serde_json::to_writer_pretty(&mut self.out, &doc)?;
        writeln!(self.out)
    }
}

/// Reads up to `buf.len()` bytes, stopping only at the end of the stream; returns how many.
fn fill_count(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a premature end of the stream.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    Ok(fill_count(input, buf)? == buf.len())
}

/// Streams the image from `input` into `listing`; a thawed checkpoint's precopy image and the
/// image after it are listed one after the other. Returns the first problem of the stream, or
/// an I/O error of the input or the output.
fn decode(input: &mut impl Read, listing: &mut impl Listing) -> io::Result<Option<FormatError>> {
    loop {
        let mut v = StreamValidator::new();
        let mut graph = graph::Builder::default();
        let mut first_error: Option<FormatError> = None;
        let result = stream(input, &mut v, listing, &mut graph, &mut first_error);
        let error = match result {
            Ok(()) => first_error,
            Err(Stop::Image(e)) => first_error.or(Some(e)),
            Err(Stop::Io(e)) => return Err(e),
        };
        listing.end(graph.finish(), v.trailer(), error.as_ref())?;
        if error.is_some() || !is_precopy(&v) {
            return Ok(error);
        }
    }
}

/// Whether the image read is a precopy image, which the image of the frozen round follows.
fn is_precopy(v: &StreamValidator) -> bool {
    v.header()
        .is_some_and(|h| h.flags & format::header_flags::PRECOPY != 0)
}

enum Stop {
    Image(FormatError),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

impl From<FormatError> for Stop {
    fn from(e: FormatError) -> Self {
        Stop::Image(e)
    }
}

fn stream(
    input: &mut impl Read,
    v: &mut StreamValidator,
    listing: &mut impl Listing,
    graph: &mut graph::Builder,
    first_error: &mut Option<FormatError>,
) -> Result<(), Stop> {
    let truncated = |v: &StreamValidator| {
        Stop::Image(FormatError {
            offset: v.offset(),
            kind: ErrorKind::Truncated,
        })
    };
    let mut magic = [0u8; 8];
    let n = fill_count(input, &mut magic)?;
    if n < magic.len() {
        // A stream that ends inside the magic is a truncated image; one that differs from it,
        // no image at all.
        let kind = if MAGIC.starts_with(&magic[..n]) {
            ErrorKind::Truncated
        } else {
            ErrorKind::BadMagic
        };
        return Err(Stop::Image(FormatError { offset: 0, kind }));
    }
    v.magic(&magic)?;
    let mut payload = Vec::new();
    while !v.is_complete() {
        let offset = v.offset();
        let mut hdr = [0u8; RECORD_HEADER_LEN];
        if !fill(input, &mut hdr)? {
            return Err(truncated(v));
        }
        let hdr = v.record_header(&hdr)?;
        payload.resize(hdr.payload_len() + hdr.padding_len(), 0);
        if !fill(input, &mut payload)? {
            return Err(truncated(v));
        }
        let (p, pad) = payload.split_at(hdr.payload_len());
        v.record_body(&hdr, p, pad)?;
        match RecordKind::from_u32(hdr.kind) {
            Some(RecordKind::Header) => {
                if let Some(h) = v.header() {
                    listing.header(h)?;
                }
                continue;
            }
            Some(RecordKind::Trailer) => continue,
            _ => {}
        }
        let mut listed = Listed {
            offset,
            kind: kind_name(hdr.kind),
            len: p.len(),
            fields: None,
            message: None,
        };
        match RecordKind::from_u32(hdr.kind) {
            Some(RecordKind::Error) => {
                listed.message = Some(format::decode_error_message(p).unwrap_or("?").to_string());
                first_error.get_or_insert(FormatError {
                    offset,
                    kind: ErrorKind::CheckpointFailed,
                });
            }
            Some(kind) => match fields::decode(kind, p) {
                Ok(Some(f)) => {
                    graph.add(&f);
                    listed.fields = Some(Shown::Fields(f));
                }
                Ok(None) => {}
                Err(e) => {
                    listed.fields = Some(Shown::Malformed {
                        malformed: e.to_string(),
                    });
                    first_error.get_or_insert(FormatError { offset, kind: e });
                }
            },
            None => {}
        }
        listing.record(listed)?;
    }
    // Nothing may follow the trailer, but the frozen round after a precopy image.
    if is_precopy(v) {
        return Ok(());
    }
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(Stop::Image(FormatError {
            offset: v.offset(),
            kind: ErrorKind::TrailingData,
        }));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.module {
        return match show_module(args.json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => f.exit("/dev/cr"),
        };
    }
    let name = args.image.clone().unwrap_or_else(|| "-".into());
    if args.chain {
        return match show_chain(&name, &args.parent_dir, args.json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("crinfo: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut input: Box<dyn Read> = match args.image.as_deref() {
        None | Some("-") => Box::new(io::stdin().lock()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(io::BufReader::with_capacity(1 << 20, f)),
            Err(e) => return Failure::Io(format!("{name}: {e}")).exit(&name),
        },
    };
    let stdout = io::stdout().lock();
    let decoded = if args.json {
        decode(
            &mut input,
            &mut JsonListing {
                out: stdout,
                header: None,
                records: Vec::new(),
            },
        )
    } else {
        decode(&mut input, &mut TextListing(io::BufWriter::new(stdout)))
    };
    match decoded {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(e)) => Failure::Invalid(e).exit(&name),
        Err(e) => Failure::Io(format!("{name}: {e}")).exit(&name),
    }
}

/// One image of a chain.
#[derive(Serialize)]
struct ChainLink {
    path: String,
    length: u64,
    checksum: String,
    incremental: bool,
}

/// `--chain`: the image and its parents, as restart finds them; fails at the first parent that
/// is missing or not the image its child was written against.
fn show_chain(image: &str, dirs: &[std::path::PathBuf], json: bool) -> Result<(), String> {
    let mut links = Vec::new();
    let mut path = std::path::PathBuf::from(image);
    let outcome = loop {
        let (identity, parent) = match crtools::chain::identify(&path) {
            Ok(found) => found,
            Err(e) => break Err(e.message().to_string()),
        };
        let link = ChainLink {
            path: path.display().to_string(),
            length: identity.length,
            checksum: format!("{:016x}", identity.checksum),
            incremental: parent.is_some(),
        };
        if !json {
            println!(
                "{} {}: length {}, checksum {}{}",
                if links.is_empty() { "image " } else { "parent" },
                link.path,
                link.length,
                link.checksum,
                if link.incremental {
                    ", incremental"
                } else {
                    ", whole"
                }
            );
        }
        links.push(link);
        let Some(parent) = parent else { break Ok(()) };
        if links.len() > 64 {
            break Err("a chain of more than 64 images".into());
        }
        match crtools::chain::find(&parent, dirs) {
            Ok(p) => path = p,
            Err(e) => break Err(e.message().to_string()),
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&links).map_err(|e| e.to_string())?
        );
    }
    outcome
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

#[derive(Serialize)]
struct ModuleInfo {
    abi_version: u32,
    image_version: u32,
    image_version_min: u32,
    arch: &'static str,
    features: String,
}

fn show_module(json: bool) -> Result<(), Failure> {
    let v = query_module().map_err(|e| Failure::Io(format!("/dev/cr: {e} (is cr.ko loaded?)")))?;
    if json {
        let doc = ModuleInfo {
            abi_version: v.abi_version,
            image_version: v.image_version,
            image_version_min: v.image_version_min,
            arch: arch_name(v.arch),
            features: format!("{:#x}", v.features),
        };
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
    Ok(())
}
