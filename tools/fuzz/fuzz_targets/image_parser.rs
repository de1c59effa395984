//! Fuzzes the image parser: whatever the bytes, the slice reader and the streaming validator (the
//! kernel's restart path) must return an error value rather than panic, and must agree.

#![no_main]

use crimage::format::{
    Xxh64, FormatError, Header, ImageReader, RecordKind, StreamValidator, Trailer, MAGIC,
    RECORD_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

/// The streaming path, driven the way the kernel drives it: magic, then header, body, padding.
fn stream(data: &[u8]) -> Result<(), ()> {
    let mut v = StreamValidator::new();
    let magic: &[u8; 8] = data.get(..8).and_then(|m| m.try_into().ok()).ok_or(())?;
    v.magic(magic).map_err(|_| ())?;
    let mut pos = 8;
    while !v.is_complete() {
        let hdr: &[u8; RECORD_HEADER_LEN] = data
            .get(pos..pos + RECORD_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(())?;
        let hdr = v.record_header(hdr).map_err(|_| ())?;
        let body = pos + RECORD_HEADER_LEN;
        let pad = body + hdr.payload_len();
        let end = pad + hdr.padding_len();
        let payload = data.get(body..pad).ok_or(())?;
        let padding = data.get(pad..end).ok_or(())?;
        if hdr.kind == RecordKind::Error as u32 {
            return Err(());
        }
        v.record_body(&hdr, payload, padding).map_err(|_| ())?;
        pos = end;
    }
    if pos == data.len() {
        Ok(())
    } else {
        Err(())
    }
}

/// Recomputes the trailer's checksum, so that mutations reach the checks behind it.
fn reseal(data: &[u8]) -> Option<Vec<u8>> {
    let trailer_at = data.len().checked_sub(RECORD_HEADER_LEN + Trailer::LEN)?;
    if !data.starts_with(&MAGIC) || trailer_at < MAGIC.len() {
        return None;
    }
    let mut hash = Xxh64::new();
    hash.update(&data[..trailer_at]);
    let mut out = data.to_vec();
    let hash_at = data.len() - 8;
    out[hash_at..].copy_from_slice(&hash.value().to_le_bytes());
    Some(out)
}

fn check(data: &[u8]) {
    let sliced: Result<_, FormatError> = ImageReader::new(data).and_then(|r| r.validate());
    assert_eq!(sliced.is_ok(), stream(data).is_ok());
    if let Ok(t) = sliced {
        assert_eq!(t.stream_len as usize + RECORD_HEADER_LEN + Trailer::LEN, data.len());
        assert!(data.starts_with(&MAGIC));
    }
    // The payload decoders on their own, on arbitrary lengths.
    let _ = Header::decode(data);
    let _ = Trailer::decode(data);
    let _ = crimage::format::decode_error_message(data);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(resealed) = reseal(data) {
        check(&resealed);
    }
});
