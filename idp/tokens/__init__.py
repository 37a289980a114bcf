"""Tokens we issue and accept: the issuing service, our own tokens verified back,
the signing keyring with its JWKS and metadata, and signed audit checkpoints."""
