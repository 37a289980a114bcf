#!/usr/bin/env bash
# Mutation testing of token_suite and keys (issue 19) with mutmut 3.
#
#   tests/mutation/run.sh [WORKDIR] [MUTANT_GLOB...]
#
# Copies the committed tree (git archive HEAD) and the built C module into WORKDIR (default: a
# fresh temporary directory), puts tests/mutation/setup.cfg there as its setup.cfg, and runs
# mutmut niced with one child (the machine is shared). Results stay in WORKDIR/mutants; read
# them with `cd WORKDIR && mutmut results` / `mutmut show NAME`. A second call on the same
# WORKDIR resumes where the first stopped. MUTANT_GLOB (e.g. 'token_suite.jwt*') restricts the run.
# Hypothesis is derandomised (HYPOTHESIS_PROFILE=ci) and the property tests run 40 examples each.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$(mktemp -d -t mutation-XXXXXX)}"
shift || true
mkdir -p "$work"
if [ ! -e "$work/setup.cfg" ]; then
  git -C "$repo" archive HEAD | tar -x -C "$work"
  cp "$repo"/token_suite/_speedups*.so "$work/token_suite/"
  cp "$repo/tests/mutation/setup.cfg" "$work/setup.cfg"
  # the other packages the tests import, from the same commit (else the editable install
  # would resolve them to the checkout, which may have moved on)
  mkdir -p "$work/mutants"
  git -C "$repo" archive HEAD idp rcd_store partners widget | tar -x -C "$work/mutants"
fi
cd "$work"
export HYPOTHESIS_PROFILE=ci VERIFY_TOTAL_EXAMPLES=40 PYTHONDONTWRITEBYTECODE=1
nice -n 19 "$repo/.venv/bin/mutmut" run --max-children "${MUTMUT_CHILDREN:-1}" "$@"
"$repo/.venv/bin/mutmut" export-cicd-stats >/dev/null 2>&1 || true
echo "results: cd $work && $repo/.venv/bin/mutmut results"
