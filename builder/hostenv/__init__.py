"""Facts about the build host: apt mirrors, pip index, KVM, block-device support."""
