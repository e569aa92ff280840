"""The engine's containers (what libpod is to podman): lifecycle under conmon, the OCI spec
generator with Docker's defaults, logs, exec, cp, commit, volumes, stats."""
