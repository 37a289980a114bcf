"""Hypothesis settings for the token_suite tests.

Under CI (``CI`` set, as ``.ci/run`` does) the ``ci`` profile is loaded: examples
are derandomised (drawn from a seed fixed by each test), so that a run either
always reaches a check or never does, and a mutant that only random examples
would kill cannot survive one run and die in the next (issue 19). Locally the
default random profile keeps exploring; ``HYPOTHESIS_PROFILE=ci`` reproduces CI.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE") == "ci" or os.environ.get("CI"):
    settings.load_profile("ci")
