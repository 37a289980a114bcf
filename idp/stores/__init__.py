"""Where the service keeps state: the database and Redis connections, the web
tables, the replay cache, the SQL key store and secrets sealed at rest."""
