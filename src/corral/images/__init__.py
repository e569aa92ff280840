"""Images: references, manifests, the copy operation between transports, the built-in image."""
