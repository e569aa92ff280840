"""Linux-specific pieces of corral-runtime: namespaces, mounts, seccomp, capabilities."""
