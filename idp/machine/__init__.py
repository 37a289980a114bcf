"""Machine login for payroll software (DSN-style ``POST /authentifier/1.0/``)
and the check of the tokens it hands out."""
