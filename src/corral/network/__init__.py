"""Container networking: network records, address and port allocation, and the plumbing.

corral owns the state (networks, addresses, published ports in the shared SQLite database) and
hands the plumbing to netavark, podman's network backend: bridge, veth pairs, NAT and port
forwarding through iptables, and name resolution through aardvark-dns. The public entry points are
`corral.network.networks` (the `network` commands) and `corral.network.attach` (what the container
lifecycle calls); see /work/notes/NETWORK-INTERFACE.md and ARCHITECTURE.md.
"""
