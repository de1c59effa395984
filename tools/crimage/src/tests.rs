//! Host tests of the shared format code, beyond the self-checks the kernel also runs.

use std::process::Command;
use std::vec::Vec;
use std::{format, string::String};

use crate::format::*;
use crate::uapi;
use crate::VecSink;

fn image_with(records: &[(u32, &[u8])]) -> Vec<u8> {
    let mut w = ImageWriter::new(VecSink(Vec::new()), &selfcheck::sample_header()).unwrap();
    for (kind, payload) in records {
        w.record(*kind, &[payload]).unwrap();
    }
    w.finish().unwrap().0
}

/// Rewrites the trailer so that the checksum, count and length match again after a deliberate edit,
/// which lets a test reach the checks that sit behind the checksum.
fn reseal(mut img: Vec<u8>) -> Vec<u8> {
    let trailer_at = img.len() - RECORD_HEADER_LEN - Trailer::LEN;
    let mut hash = Xxh64::new();
    hash.update(&img[..trailer_at]);
    let mut records = 0u32;
    let mut pos = 8;
    while pos < trailer_at {
        let hdr: [u8; 8] = img[pos..pos + 8].try_into().unwrap();
        let len = u32::from_le_bytes(hdr[4..].try_into().unwrap()) as usize;
        pos += align_up(len.max(8));
        records += 1;
    }
    let t = Trailer {
        records,
        stream_len: trailer_at as u64,
        xxh64: hash.value(),
    };
    img[trailer_at + RECORD_HEADER_LEN..].copy_from_slice(&t.encode());
    img
}

fn error_of(img: &[u8]) -> ErrorKind {
    ImageReader::new(img)
        .and_then(|r| r.validate())
        .unwrap_err()
        .kind
}

#[test]
fn shared_selfchecks_pass_on_the_host() {
    for (name, check) in selfcheck::ALL {
        assert_eq!(check(), Ok(()), "{name}");
    }
}

#[test]
fn empty_image_is_valid() {
    let img = image_with(&[]);
    let t = ImageReader::new(&img).unwrap().validate().unwrap();
    assert_eq!(t.records, 1);
    assert_eq!(t.stream_len as usize, img.len() - 32);
}

#[test]
fn unknown_mandatory_kind_is_rejected_optional_is_skipped() {
    let img = image_with(&[(KIND_OPTIONAL | 99, b"x")]);
    assert!(ImageReader::new(&img).unwrap().validate().is_ok());
    let img = image_with(&[(99, b"x")]);
    assert_eq!(error_of(&img), ErrorKind::UnknownKind(99));
}

#[test]
fn error_record_marks_image_incomplete() {
    let img = image_with(&[(RecordKind::Error as u32, b"fd 5: socket not supported")]);
    let err = ImageReader::new(&img).unwrap().validate().unwrap_err();
    assert_eq!(err.kind, ErrorKind::CheckpointFailed);
    let rec = ImageReader::new(&img).unwrap().next().unwrap().unwrap();
    assert_eq!(
        decode_error_message(rec.payload),
        Ok("fd 5: socket not supported")
    );
}

#[test]
fn bad_magic_and_empty_input() {
    assert_eq!(error_of(b""), ErrorKind::Truncated);
    assert_eq!(error_of(&MAGIC[..5]), ErrorKind::Truncated);
    assert_eq!(error_of(b"hello\n"), ErrorKind::BadMagic);
    assert_eq!(
        error_of(b"\x7fELF\x02\x01\x01\x00rest"),
        ErrorKind::BadMagic
    );
}

#[test]
fn header_fields_are_validated() {
    let mut h = selfcheck::sample_header();
    h.format_version = FORMAT_VERSION + 1;
    assert_eq!(
        Header::decode(&h.encode()),
        Err(ErrorKind::UnsupportedVersion(FORMAT_VERSION + 1))
    );
    let mut h = selfcheck::sample_header();
    h.arch = 7;
    assert_eq!(
        Header::decode(&h.encode()),
        Err(ErrorKind::UnsupportedArch(7))
    );
    let mut h = selfcheck::sample_header();
    h.flags = 4;
    assert_eq!(
        Header::decode(&h.encode()),
        Err(ErrorKind::UnknownHeaderFlags(4))
    );
    let mut h = selfcheck::sample_header();
    h.page_size = 4097;
    assert_eq!(
        Header::decode(&h.encode()),
        Err(ErrorKind::BadField("page_size"))
    );
    let mut h = selfcheck::sample_header();
    h.release = [b'a'; RELEASE_LEN];
    assert_eq!(Header::decode(&h.encode()), Err(ErrorKind::BadString));
    // A newer, longer header is reported as a version problem, not as garbage.
    let mut longer = h.encode().to_vec();
    let newer = crate::format::FORMAT_VERSION + 1;
    longer[..4].copy_from_slice(&newer.to_le_bytes());
    longer.extend_from_slice(&[0; 8]);
    assert_eq!(
        Header::decode(&longer),
        Err(ErrorKind::UnsupportedVersion(newer))
    );
}

#[test]
fn checks_behind_the_checksum() {
    let img = image_with(&[(KIND_OPTIONAL | 5, b"abc")]);
    // Non-zero padding after "abc".
    let mut bad = img.clone();
    let pad_at = 8 + RECORD_HEADER_LEN + Header::LEN + RECORD_HEADER_LEN + 3;
    bad[pad_at] = 1;
    assert_eq!(error_of(&reseal(bad)), ErrorKind::NonZeroPadding);
    // A record length below the header size.
    let mut bad = img.clone();
    let rec_at = 8 + RECORD_HEADER_LEN + Header::LEN;
    bad[rec_at + 4..rec_at + 8].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(error_of(&bad), ErrorKind::BadRecordLength(4));
    // A second header.
    let twice = image_with(&[(
        RecordKind::Header as u32,
        &selfcheck::sample_header().encode(),
    )]);
    assert_eq!(error_of(&twice), ErrorKind::DuplicateHeader);
    // Data after the trailer.
    let mut long = img.clone();
    long.extend_from_slice(&[0; 8]);
    assert_eq!(error_of(&long), ErrorKind::TrailingData);
}

#[test]
fn huge_record_length_does_not_overflow() {
    let mut img = image_with(&[]);
    let rec_at = img.len() - RECORD_HEADER_LEN - Trailer::LEN;
    img[rec_at + 4..rec_at + 8].copy_from_slice(&MAX_RECORD_LEN.to_le_bytes());
    assert_eq!(error_of(&img), ErrorKind::Truncated);
    img[rec_at + 4..rec_at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(error_of(&img), ErrorKind::BadRecordLength(u32::MAX));
}

#[test]
fn writer_refuses_oversized_records() {
    let mut w = ImageWriter::new(VecSink(Vec::new()), &selfcheck::sample_header()).unwrap();
    let big = std::vec![0u8; MAX_RECORD_LEN as usize];
    assert_eq!(
        w.record(KIND_OPTIONAL | 1, &[&big]),
        Err(WriteError::TooLarge)
    );
}

#[test]
fn streaming_validator_matches_slice_reader() {
    let img = image_with(&[(KIND_OPTIONAL | 5, b"abcdefghij"), (KIND_OPTIONAL | 6, b"")]);
    let mut v = StreamValidator::new();
    v.magic(img[..8].try_into().unwrap()).unwrap();
    let mut pos = 8;
    while !v.is_complete() {
        let hdr = v
            .record_header(img[pos..pos + 8].try_into().unwrap())
            .unwrap();
        let body = pos + 8;
        let pad = body + hdr.payload_len();
        v.record_body(&hdr, &img[body..pad], &img[pad..pad + hdr.padding_len()])
            .unwrap();
        pos = pad + hdr.padding_len();
    }
    assert_eq!(pos, img.len());
    assert_eq!(v.trailer().unwrap().records, 3);
    let after = v.record_header(&[0; 8]).unwrap_err();
    assert_eq!(after.kind, ErrorKind::AfterTrailer);
}

#[test]
fn error_messages_name_the_offset() {
    let e = FormatError {
        offset: 136,
        kind: ErrorKind::ChecksumMismatch {
            expected: 1,
            actual: 2,
        },
    };
    assert_eq!(
        format!("{e}"),
        "offset 136: checksum mismatch: trailer 0x0000000000000001, stream 0x0000000000000002"
    );
}

/// The Rust mirror of the ABI must match what a C compiler makes of `cr.h`.
#[test]
fn uapi_matches_the_c_header() {
    let dir = std::env::temp_dir().join(format!("cr-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/cr.h>\n\
         int main(void) { printf(\"%u %u %u %u %u %zu %zu %llu %llu %llu\\n\", \
         (unsigned)CR_IOC_VERSION, \
         CR_ABI_VERSION, CR_IMAGE_VERSION, CR_IMAGE_VERSION_MIN, CR_ARCH_X86_64, \
         sizeof(struct cr_version), offsetof(struct cr_version, features), \
         (unsigned long long)CR_FEATURES_KNOWN, \
         (unsigned long long)(CR_CHECKPOINT_ALLOW_LEAKS | CR_CHECKPOINT_STATS | \
         CR_CHECKPOINT_AFTER_PRECOPY | CR_CHECKPOINT_TRACK), \
         (unsigned long long)(CR_RESTART_DRY_RUN | CR_RESTART_STATS)); \
         printf(\"%u %zu\\n\", (unsigned)CR_IOC_PROGRESS, sizeof(struct cr_progress)); \
         printf(\"%u %zu %u %zu %llu %llu\\n\", (unsigned)CR_IOC_PRECOPY, \
         sizeof(struct cr_precopy_args), (unsigned)CR_IOC_STAGE, sizeof(struct cr_stage_args), \
         (unsigned long long)CR_PRECOPY_STATS, (unsigned long long)CR_CHECKPOINT_AFTER_PRECOPY); \
         printf(\"%u %zu %zu %llu\\n\", (unsigned)CR_IOC_PARENT, sizeof(struct cr_parent_args), \
         offsetof(struct cr_parent_args, path_len), (unsigned long long)CR_CHECKPOINT_TRACK); \
         return 0; }\n",
    )
    .unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/../../include/uapi");
    let status = Command::new("cc")
        .args(["-I", include, "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("a C compiler");
    assert!(status.success());
    let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
    let want = format!(
        "{} {} {} {} {} {} 16 {} {} {}\n{} {}\n{} {} {} {} {} {}\n{} {} 24 {}\n",
        uapi::IOC_VERSION,
        uapi::ABI_VERSION,
        FORMAT_VERSION,
        FORMAT_VERSION_MIN,
        ARCH_X86_64,
        uapi::Version::SIZE_V1,
        uapi::FEATURES_KNOWN,
        uapi::CHECKPOINT_FLAGS_KNOWN,
        uapi::RESTART_FLAGS_KNOWN,
        uapi::IOC_PROGRESS,
        uapi::Progress::SIZE_V1,
        uapi::IOC_PRECOPY,
        uapi::PrecopyArgs::SIZE_V1,
        uapi::IOC_STAGE,
        uapi::StageArgs::SIZE_V1,
        uapi::PRECOPY_FLAGS_KNOWN,
        uapi::CHECKPOINT_AFTER_PRECOPY,
        uapi::IOC_PARENT,
        uapi::ParentArgs::SIZE_V1,
        uapi::CHECKPOINT_TRACK
    );
    assert_eq!(out, want);
    assert_eq!(
        core::mem::size_of::<uapi::Version>(),
        uapi::Version::SIZE_V1
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn arg_size_rule() {
    use uapi::{classify_arg_size, ArgSize};
    assert_eq!(classify_arg_size(23, 24), ArgSize::Invalid);
    assert_eq!(classify_arg_size(24, 24), ArgSize::Usable(24));
    assert_eq!(classify_arg_size(32, 24), ArgSize::Usable(32));
    assert_eq!(classify_arg_size(4097, 24), ArgSize::Invalid);
    let parts = uapi::IocParts::split(uapi::IOC_VERSION);
    assert_eq!(
        (parts.dir, parts.magic, parts.nr, parts.size),
        (uapi::IOC_READ, 0xC7, 0, 24)
    );
}

/// Hashes the body on another thread, as the kernel does on another CPU.
struct ThreadHasher<'scope, 'env> {
    body: &'env [&'env [u8]],
    job: Option<std::thread::ScopedJoinHandle<'scope, Xxh64>>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
}

impl BodyHasher for ThreadHasher<'_, '_> {
    fn start(&mut self, before: Xxh64) {
        let body = self.body;
        self.job = Some(self.scope.spawn(move || {
            let mut h = before;
            for p in body {
                h.update(p);
            }
            h
        }));
    }
    fn finish(&mut self) -> Xxh64 {
        self.job.take().unwrap().join().unwrap()
    }
}

fn pages_payload(addrs: &[u64]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut head = PagesHeader {
        count: addrs.len() as u32,
        reserved: 0,
    }
    .encode()
    .to_vec();
    for a in addrs {
        head.extend_from_slice(&a.to_le_bytes());
    }
    let pages = addrs
        .iter()
        .map(|a| std::vec![(*a >> 12) as u8 ^ 0x5a; 4096])
        .collect();
    (head, pages)
}

#[test]
fn a_split_record_hashed_elsewhere_is_the_same_image() {
    let addrs = [0x1000u64, 0x2000, 0x3000, 0x7000, 0x9000, 0xa000];
    let (head, pages) = pages_payload(&addrs);
    let page_refs: Vec<&[u8]> = pages.iter().map(|p| &p[..]).collect();
    let mut whole = head.clone();
    for p in &pages {
        whole.extend_from_slice(p);
    }
    let plain = image_with(&[(RecordKind::Pages as u32, &whole), (0x8000_0077, b"odd")]);
    let split = std::thread::scope(|scope| {
        let mut w = ImageWriter::new(VecSink(Vec::new()), &selfcheck::sample_header()).unwrap();
        let mut hasher = ThreadHasher {
            body: &page_refs,
            job: None,
            scope,
        };
        w.record_split(RecordKind::Pages as u32, &[&head], &page_refs, &mut hasher)
            .unwrap();
        w.record(0x8000_0077, &[b"odd"]).unwrap();
        w.finish().unwrap().0
    });
    assert_eq!(plain, split);

    // The same image, read in pieces as restart streams pages into memory.
    let mut v = StreamValidator::new();
    v.magic(split[..8].try_into().unwrap()).unwrap();
    let mut pos = 8;
    let mut pages_seen = 0;
    while pos < split.len() {
        let hdr = v
            .record_header(split[pos..pos + 8].try_into().unwrap())
            .unwrap();
        pos += 8;
        let body = hdr.payload_len() + hdr.padding_len();
        if hdr.kind == RecordKind::Pages as u32 {
            v.begin_body(&hdr).unwrap();
            let n = crate::records::PageList::count_of(&split[pos..pos + 8]).unwrap();
            let head_len = 8 + n * 8;
            let list =
                crate::records::PageList::decode(&split[pos..pos + head_len], hdr.payload_len())
                    .unwrap();
            assert_eq!(
                list.runs().collect::<Vec<_>>(),
                [(0x1000, 3), (0x7000, 1), (0x9000, 2)]
            );
            for piece in split[pos..pos + body].chunks(1000) {
                v.body_part(piece).unwrap();
            }
            assert_eq!(v.body_left(), 0);
            v.end_body().unwrap();
            pages_seen += list.count;
        } else {
            v.record_body(
                &hdr,
                &split[pos..pos + hdr.payload_len()],
                &split[pos + hdr.payload_len()..pos + body],
            )
            .unwrap();
        }
        pos += body;
    }
    assert!(v.is_complete());
    assert_eq!(pages_seen, 6);
}

#[test]
fn a_streamed_body_is_checked_like_a_whole_one() {
    let img = image_with(&[(0x8000_0077, b"odd")]);
    let mut v = StreamValidator::new();
    v.magic(img[..8].try_into().unwrap()).unwrap();
    let hdr = v.record_header(img[8..16].try_into().unwrap()).unwrap();
    let header_body = hdr.payload_len();
    // The header record cannot be streamed: it is interpreted.
    assert!(v.begin_body(&hdr).is_err());
    v.record_body(&hdr, &img[16..16 + header_body], &[])
        .unwrap();
    let at = 16 + header_body;
    let hdr = v
        .record_header(img[at..at + 8].try_into().unwrap())
        .unwrap();
    v.begin_body(&hdr).unwrap();
    // Too much, then non-zero padding, then a record header before the body ends.
    assert!(v.body_part(&[0; 9]).is_err());
    v.body_part(b"od").unwrap();
    assert_eq!(
        v.body_part(b"d\x01\0\0\0\0").unwrap_err().kind,
        ErrorKind::NonZeroPadding
    );
    assert!(v.record_header(&[0; 8]).is_err());
    assert!(v.end_body().is_err());
}

#[test]
fn a_stats_line_reads_back() {
    let s = uapi::Stats {
        tasks: 3,
        pages: 262144,
        bytes: 1 << 30,
        ns: 812_000_000,
    };
    let line = format!("{s}\n");
    assert_eq!(
        line,
        "cr: stats: tasks=3 pages=262144 bytes=1073741824 ns=812000000\n"
    );
    assert_eq!(uapi::Stats::parse(&line), Some(s));
    assert_eq!(uapi::Stats::parse("cr: checkpoint: pid 3: refused"), None);
}

#[test]
fn a_lent_hash_comes_back_advanced() {
    let (head, pages) = pages_payload(&[0x1000, 0x2000]);
    let page_refs: Vec<&[u8]> = pages.iter().map(|p| &p[..]).collect();
    let mut whole = head.clone();
    for p in &pages {
        whole.extend_from_slice(p);
    }
    let img = image_with(&[(RecordKind::Pages as u32, &whole)]);
    let mut v = StreamValidator::new();
    v.magic(img[..8].try_into().unwrap()).unwrap();
    let mut pos = 8;
    let hdr = v
        .record_header(img[pos..pos + 8].try_into().unwrap())
        .unwrap();
    let hl = hdr.payload_len();
    v.record_body(&hdr, &img[pos + 8..pos + 8 + hl], &[])
        .unwrap();
    pos += 8 + align_up(hl);
    let hdr = v
        .record_header(img[pos..pos + 8].try_into().unwrap())
        .unwrap();
    v.begin_body(&hdr).unwrap();
    v.body_part(&head).unwrap();
    // The first page hashed elsewhere; nothing else may be fed while the hash is out.
    let mut h = v.lend(4096).unwrap();
    assert!(v.body_part(page_refs[1]).is_err());
    assert!(v.lend(4096).is_err());
    assert!(v.record_header(&[0; 8]).is_err());
    assert!(v.end_body().is_err());
    h.update(page_refs[0]);
    v.give_back(h).unwrap();
    // More than the payload left cannot be lent.
    assert!(v.lend(8192).is_err());
    v.body_part(page_refs[1]).unwrap();
    v.end_body().unwrap();
    pos += 8 + hdr.payload_len();
    let hdr = v
        .record_header(img[pos..pos + 8].try_into().unwrap())
        .unwrap();
    v.record_body(&hdr, &img[pos + 8..pos + 8 + hdr.payload_len()], &[])
        .unwrap();
    assert!(v.is_complete());
}
