"""Hypothesis settings for the token_suite tests.

Under CI (``CI`` set, as ``.ci/run`` does) the ``ci`` profile is loaded: examples
are derandomised (drawn from a seed fixed by each test), so that a run either
always reaches a check or never does, and a mutant that only random examples
would kill cannot survive one run and die in the next (issue 19). Locally the
``token_suite`` profile keeps exploring at random; ``HYPOTHESIS_PROFILE=ci``
reproduces CI. Neither has a deadline (the machine is shared with other jobs).
"""

from __future__ import annotations

import os

from hypothesis import settings

#: No deadline: the machine is shared, so timing says nothing about a property.
settings.register_profile("token_suite", deadline=None)
settings.register_profile("ci", parent=settings.get_profile("token_suite"), derandomize=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "token_suite")
settings.load_profile(PROFILE)
