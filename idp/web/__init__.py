"""Shared web helpers: CSRF, error pages and answers, security headers,
request-body limits and safe redirects."""
