"""Administration of a company by its administrators (declarants, habilitations,
administrators), free of any web framework: the pages and the JSON admin API call
these functions. Every function checks the actor through :mod:`.access` first."""
