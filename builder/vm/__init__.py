"""VM and bare-metal guest images with diskimage-builder (elements in ``elements/``).

    hostcaps.probe_device_mapper / probe_kvm          what this host can do (device-mapper, a working KVM)
    images.build_guest_base                           OS + runtime + agent, once per (suite, agent build)
    images.build_cell_images                          a cell's vm (qcow2) and baremetal (raw disk, partition
                                                      image, kernel, ramdisk) images, each with a manifest
    verify.verify_image                               testinfra on the root filesystem, without booting
    boot.boot_and_verify                              qemu boot with a NoCloud seed, testinfra over SSH
"""
