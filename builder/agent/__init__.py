"""The guest agent: one self-contained tree (bundled CPython + glibc + venv), built once, shipped as a
deterministic tarball that becomes the sidecar's top layer, every all-in-one image's top layer and the
VM guests' ``/opt/guest-agent-venv``; plus the configuration it receives at run time.

Nothing is re-exported here: importing ``builder.agent.values`` (every graph declaration does) must not
load the tree builder and the Docker SDK, nor put them in the import closure of the kinds that only read
agent values.
"""
