"""The staged set-up of container processes (main -> intermediate -> init); see protocol.py."""
