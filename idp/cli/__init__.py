"""The ``idp`` command line: directory, partners, keys, tokens, audit, serve.
Commands import ``idp.cli.common``; only ``idp.cli.main`` gathers them."""
