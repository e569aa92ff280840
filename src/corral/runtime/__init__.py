"""corral-runtime: an OCI runtime with runc's command line. Standard library only, single-threaded."""
