# guestforge-guest defaults; guestforge passes the release and mirrors in.
export DIB_GUESTFORGE_DATASOURCES=${DIB_GUESTFORGE_DATASOURCES:-"NoCloud, ConfigDrive"}
# dpkg path filters, one per line (guestforge passes the list its OCI bases use); empty: keep everything.
export DIB_GUESTFORGE_DPKG_FILTERS=${DIB_GUESTFORGE_DPKG_FILTERS:-}
export DIB_GUESTFORGE_SERIAL=${DIB_GUESTFORGE_SERIAL:-"ttyS0,115200n8"}
# Used by DIB's bootloader element on the block-device path.
export DIB_BOOTLOADER_SERIAL_CONSOLE=${DIB_BOOTLOADER_SERIAL_CONSOLE:-"${DIB_GUESTFORGE_SERIAL}"}
export DIB_BOOTLOADER_DEFAULT_CMDLINE=${DIB_BOOTLOADER_DEFAULT_CMDLINE:-"nofb nomodeset gfxpayload=text"}
# cloud-init configures the network from the datasource (or DHCP on the first NIC): no fixed eth0/eth1
# stanzas from the debootstrap element, which fail under predictable interface names.
export DIB_APT_MINIMAL_CREATE_INTERFACES=${DIB_APT_MINIMAL_CREATE_INTERFACES:-0}
# How the guest brings its network up from cloud-init's configuration: ifupdown where cloud-init renders
# IPv4 DHCP only (bullseye, bookworm); systemd-networkd from trixie on, where cloud-init also renders
# DHCPv6 and ifupdown would block the boot waiting for a DHCPv6 lease that many networks never offer.
case "${DIB_RELEASE:-}" in
    bullseye|bookworm)
        export DIB_GUESTFORGE_NETWORK=${DIB_GUESTFORGE_NETWORK:-ifupdown}
        ;;
    *)
        export DIB_GUESTFORGE_NETWORK=${DIB_GUESTFORGE_NETWORK:-networkd}
        ;;
esac
