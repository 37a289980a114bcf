"""Mandate pages of the administration: the client company's administrator grants and
ends mandates; the mandataire's administrator habilitates its own declarants on the
client's establishments within a mandate (:mod:`rcd_store.mandates.delegation`)."""
