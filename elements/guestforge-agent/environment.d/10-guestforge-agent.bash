# guestforge-agent settings; guestforge passes the matrix's `agent:` values in.
export DIB_GUESTFORGE_AGENT_TARBALL=${DIB_GUESTFORGE_AGENT_TARBALL:-}
export DIB_GUESTFORGE_AGENT_USER=${DIB_GUESTFORGE_AGENT_USER:-trove}
export DIB_GUESTFORGE_AGENT_UID=${DIB_GUESTFORGE_AGENT_UID:-1100}
export DIB_GUESTFORGE_AGENT_VENV=${DIB_GUESTFORGE_AGENT_VENV:-/opt/guest-agent-venv}
export DIB_GUESTFORGE_AGENT_ENTRYPOINT=${DIB_GUESTFORGE_AGENT_ENTRYPOINT:-trove-guestagent}
export DIB_GUESTFORGE_AGENT_CONFIG_DIR=${DIB_GUESTFORGE_AGENT_CONFIG_DIR:-/etc/trove/conf.d}
export DIB_GUESTFORGE_AGENT_LOG_DIR=${DIB_GUESTFORGE_AGENT_LOG_DIR:-/var/log/trove}
# The file written at boot (by Trove's config drive or cloud-init) whose presence starts the agent.
export DIB_GUESTFORGE_AGENT_CONFIG_MARKER=${DIB_GUESTFORGE_AGENT_CONFIG_MARKER:-guest_info.conf}
# The agent's environment, space-separated NAME=value pairs (plain values only): guestforge passes
# builder.agent.config.environment(), the one declaration also rendered into the agent sidecar image.
export DIB_GUESTFORGE_AGENT_ENVIRONMENT=${DIB_GUESTFORGE_AGENT_ENVIRONMENT:?guestforge passes the agent environment}
