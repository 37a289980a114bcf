"""Authentication of declarants: the login page, second factor, password reset,
password hashing, lockout and rate limits, and who a partner may assert."""
