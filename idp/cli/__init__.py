"""The ``idp`` command line: directory, partners, keys, tokens, audit, serve.
Commands import ``idp.cli.main.common``; only ``idp.cli.main.main`` gathers them."""
