"""The guest agent: one self-contained tree (bundled CPython + glibc + venv), built once, shipped as a
deterministic tarball that becomes the sidecar's top layer, every all-in-one image's top layer and the
VM guests' ``/opt/guest-agent-venv``; plus the configuration it receives at run time."""

from builder.agent.bundle import AgentTree, PipSettings, build_agent_tree
from builder.agent.config import command, environment, runtime_files

__all__ = ["AgentTree", "PipSettings", "build_agent_tree", "command", "environment", "runtime_files"]
