# The tree is a Debian guest built by debian-minimal; tell later elements what it is.
export DISTRO_NAME=debian
export DIB_INIT_SYSTEM=systemd
export EFI_BOOT_DIR="EFI/debian"
export DIB_GUESTFORGE_BASE_TREE=${DIB_GUESTFORGE_BASE_TREE:-}
export DIB_GUESTFORGE_BOOT_GRUB=${DIB_GUESTFORGE_BOOT_GRUB:-}
export DIB_GUESTFORGE_ESP_LABEL=${DIB_GUESTFORGE_ESP_LABEL:-}
