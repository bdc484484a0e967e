"""OCI artifacts: base root filesystems, datastore/agent/exporter images, pod specs."""
