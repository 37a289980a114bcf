"""The demo directory and the demo partner site (a partner's reference
integration, which uses only ``token_suite`` and ``keys``)."""
