// SPDX-License-Identifier: GPL-2.0

//! KUnit suite: runs the image parser's self-checks inside the kernel, on the very code the
//! module uses, so that what the host tests and the fuzzer prove also holds for the kernel build.

use kernel::prelude::*;

#[kunit_tests(cr_format)]
mod tests {
    use crate::format::selfcheck;

    #[test]
    fn roundtrip() {
        assert_eq!(selfcheck::roundtrip(), Ok(()));
    }

    #[test]
    fn truncations() {
        assert_eq!(selfcheck::truncations(), Ok(()));
    }

    #[test]
    fn bit_flips() {
        assert_eq!(selfcheck::bit_flips(), Ok(()));
    }

    #[test]
    fn crc32c_vectors() {
        assert_eq!(selfcheck::crc32c_vectors(), Ok(()));
    }

    #[test]
    fn objrefs() {
        assert_eq!(selfcheck::objrefs(), Ok(()));
    }

    #[test]
    fn every_selfcheck_is_a_case() {
        assert_eq!(selfcheck::ALL.len(), 5);
    }
}
