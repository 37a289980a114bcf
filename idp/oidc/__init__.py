"""OpenID Connect and OAuth 2 (Authlib): server set-up, clients, grants, token
exchange, introspection and revocation, discovery and logout."""
