//! The image checksum is XXH64 (seed 0): ours must agree with an independent implementation
//! for every length around the 32-byte stripe and every way of feeding it.

use crimage::format::Xxh64;

fn ours(parts: &[&[u8]]) -> u64 {
    let mut h = Xxh64::new();
    for p in parts {
        h.update(p);
    }
    h.value()
}

fn data(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn every_length_matches_the_reference() {
    for len in 0..300 {
        let d = data(len);
        assert_eq!(
            ours(&[&d]),
            xxhash_rust::xxh64::xxh64(&d, 0),
            "length {len}"
        );
    }
    let big = data(1 << 20);
    assert_eq!(ours(&[&big]), xxhash_rust::xxh64::xxh64(&big, 0));
}

#[test]
fn feeding_in_pieces_changes_nothing() {
    let d = data(4096 + 77);
    let want = xxhash_rust::xxh64::xxh64(&d, 0);
    for a in [0, 1, 7, 8, 31, 32, 33, 100, 4096] {
        for b in [a, a + 1, a + 31, a + 64, d.len()] {
            let b = b.min(d.len());
            assert_eq!(ours(&[&d[..a], &d[a..b], &d[b..]]), want, "splits {a} {b}");
        }
    }
    let mut h = Xxh64::new();
    for byte in &d {
        h.update(std::slice::from_ref(byte));
    }
    assert_eq!(h.value(), want);
}
