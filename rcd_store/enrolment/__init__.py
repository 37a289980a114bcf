"""Company enrolment and join requests (docs/architecture.md): one-time codes and links,
a person enrolling a company (candidate administrator, letter to the legal
representative, activation, co-optation, objection) and people asking to join it."""
