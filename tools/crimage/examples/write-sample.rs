//! Writes the shared self-check's sample image to the path given: test data for the VM
//! selftests, which cannot produce an image of their own before checkpoint exists.

use crimage::format::selfcheck;

fn main() {
    let path = std::env::args().nth(1).expect("usage: write-sample PATH");
    let mut buf = [0u8; selfcheck::SAMPLE_BUF];
    let len = selfcheck::write_sample(&mut buf).expect("sample image");
    std::fs::write(&path, &buf[..len]).expect("write sample image");
}
