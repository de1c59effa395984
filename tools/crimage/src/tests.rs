//! Host tests of the shared format code, beyond the self-checks the kernel also runs.

use std::process::Command;
use std::vec::Vec;
use std::{format, string::String};

use crate::format::*;
use crate::uapi;

struct VecSink(Vec<u8>);

impl Sink for VecSink {
    type Error = ();
    fn put(&mut self, bytes: &[u8]) -> core::result::Result<(), ()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

fn image_with(records: &[(u32, &[u8])]) -> Vec<u8> {
    let mut w = ImageWriter::new(VecSink(Vec::new()), &selfcheck::sample_header()).unwrap();
    for (kind, payload) in records {
        w.record(*kind, &[payload]).unwrap();
    }
    w.finish().unwrap().0
}

/// Rewrites the trailer so that the CRC, count and length match again after a deliberate edit,
/// which lets a test reach the checks that sit behind the checksum.
fn reseal(mut img: Vec<u8>) -> Vec<u8> {
    let trailer_at = img.len() - RECORD_HEADER_LEN - Trailer::LEN;
    let mut crc = Crc32c::new();
    crc.update(&img[..trailer_at]);
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
        crc32c: crc.value(),
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
    longer[..4].copy_from_slice(&9u32.to_le_bytes());
    longer.extend_from_slice(&[0; 8]);
    assert_eq!(
        Header::decode(&longer),
        Err(ErrorKind::UnsupportedVersion(9))
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
        "offset 136: checksum mismatch: trailer 0x00000001, stream 0x00000002"
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
         int main(void) { printf(\"%u %u %u %u %u %zu %zu %llu\\n\", (unsigned)CR_IOC_VERSION, \
         CR_ABI_VERSION, CR_IMAGE_VERSION, CR_IMAGE_VERSION_MIN, CR_ARCH_X86_64, \
         sizeof(struct cr_version), offsetof(struct cr_version, features), \
         (unsigned long long)CR_FEATURES_KNOWN); return 0; }\n",
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
        "{} {} {} {} {} {} 16 {}\n",
        uapi::IOC_VERSION,
        uapi::ABI_VERSION,
        FORMAT_VERSION,
        FORMAT_VERSION_MIN,
        ARCH_X86_64,
        uapi::Version::SIZE_V1,
        uapi::FEATURES_KNOWN
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
