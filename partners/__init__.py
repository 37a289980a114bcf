"""partners package."""
