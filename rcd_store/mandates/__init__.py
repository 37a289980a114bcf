"""Mandates and pilot services: who may act for a client company, on which services,
establishments and dates, and which companies a pilot service is open to.

:mod:`.rules` holds the one rule that says whether a right counts (its mandate lives,
its pilot service is open to the company): :func:`rcd_store.services.active_habilitations`
applies it, so every path that reads rights obeys it. :mod:`.lifecycle` grants, ends and
sweeps mandates; :mod:`.delegation` is what administrators do (pages and JSON API);
:mod:`.pilots` opens a pilot service to companies."""
