"""rcd_store package."""
