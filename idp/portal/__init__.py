"""The declarant's portal: home page, dashboard and navigation to partner
services (IdP-initiated jetons)."""
