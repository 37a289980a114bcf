"""Single sign-on sessions: the browser's session and its participants, kept in
the database or in Redis."""
