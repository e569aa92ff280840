"""The registry side of corral: the OCI distribution protocol and what it needs around it.

    hosts.py        where a registry is and how to reach it: docker.io's API host, TLS (certs.d
                    CAs and client certs, --tls-verify=false), insecure registries (registries.conf)
    auth.py         WWW-Authenticate challenges: Bearer tokens (realm/service/scope), basic auth
    credentials.py  auth.json (login/logout) and ~/.docker/config.json
    client.py       the HTTP protocol: manifests, blobs (verified, resumable), uploads, mounts
    progress.py     docker-like per-layer progress lines on a terminal, nothing otherwise

`corral.images.transports.registry` puts a transport's face (source and destination) on the
client; nothing else in corral speaks HTTP to a registry.
"""
