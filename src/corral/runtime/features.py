"""`corral-runtime features`: the runtime-spec features document (features.md, features-linux.md).

Same shape as `runc features`: what corral-runtime recognises in config.json. The seccomp part is
asked of libseccomp (its version, API level) when the library is present.
"""

from __future__ import annotations

from typing import Any

from corral.runtime.linux import caps, seccomp

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.1.0"

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]



def features() -> dict[str, Any]:
    """The features document as a JSON-ready dict."""
    from corral.runtime import cli
    from corral.runtime.linux import mounts

    version = seccomp.library_version()
    annotations = {"org.opencontainers.runtime-spec.features.version": OCI_VERSION_MAX,
                   "io.github.corral.runtime.version": cli.VERSION}
    if version is not None:
        annotations["io.github.seccomp.libseccomp.version"] = version
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        # what linux/mounts.py turns into mount(2) flags or propagation ("defaults": nothing)
        "mountOptions": sorted({*mounts.FLAGS, *mounts.PROPAGATION, "defaults"}),
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": list(caps.NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
            "seccomp": {
                "enabled": version is not None,
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": sorted(seccomp.ARCHES),
                "knownFlags": list(seccomp.FLAGS),
                "supportedFlags": seccomp.supported_flags(),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": annotations,
    }
