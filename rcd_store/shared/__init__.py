"""Reads of the directory bounded to a set of services: what an organism that shares
those services may see (establishments, declarants and habilitations with a right in
force on one of them), and nothing else."""
