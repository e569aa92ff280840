"""The `corral` command line: thin edges over the library, one module per command group."""
