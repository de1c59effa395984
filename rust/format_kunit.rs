// SPDX-License-Identifier: GPL-2.0

//! KUnit suite: runs the image parser's self-checks inside the kernel, on the very code the
//! module uses, so that what the host tests and the fuzzer prove also holds for the kernel build;
//! and the ioctl argument rule the module applies.

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
    fn checksum_vectors() {
        assert_eq!(selfcheck::checksum_vectors(), Ok(()));
    }

    #[test]
    fn objrefs() {
        assert_eq!(selfcheck::objrefs(), Ok(()));
    }

    #[test]
    fn every_selfcheck_is_a_case() {
        assert_eq!(selfcheck::ALL.len(), 5);
    }

    /// The ioctl size rule, as the module applies it.
    #[test]
    fn ioctl_argument_sizes() {
        use crate::uapi::{classify_arg_size, ArgSize, OpArgs, MAX_ARG_SIZE};
        assert_eq!(
            classify_arg_size(OpArgs::SIZE_V1 - 1, OpArgs::SIZE_V1),
            ArgSize::Invalid
        );
        assert_eq!(
            classify_arg_size(OpArgs::SIZE_V1, OpArgs::SIZE_V1),
            ArgSize::Usable(OpArgs::SIZE_V1)
        );
        assert_eq!(
            classify_arg_size(MAX_ARG_SIZE + 1, OpArgs::SIZE_V1),
            ArgSize::Invalid
        );
        let args = OpArgs {
            pid: 7,
            fd: 3,
            logfd: -1,
            reserved: 0,
            flags: 0,
        };
        assert_eq!(OpArgs::from_bytes(&args.to_bytes()), args);
    }
}
