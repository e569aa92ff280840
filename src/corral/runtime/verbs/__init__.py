"""One module per corral-runtime verb: `configure(parser)` adds its flags, `run(args, ctx)`
parses -> guards -> acts -> reports, through the library modules."""
