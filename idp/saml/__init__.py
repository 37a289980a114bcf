"""SAML 2.0 identity provider: SSO and SLO endpoints, and inbound trust (a partner
portal's jeton opening a session here)."""
