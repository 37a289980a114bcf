#!/usr/bin/env bash
# Fuzz jwt.verify and saml.verify with atheris (issue 19): tests/fuzz/run.sh [SECONDS] [CORPUS_OUT]
#
# Both harnesses run side by side, each SECONDS (default 60) from a scratch copy of tests/fuzz/corpus/<kind>,
# memory capped (2 GB RSS; SAML also 1 GB per allocation), niced. A finding (an exception
# other than an Interops error, a forgery accepted, a crash, a leak past the cap) stops the
# harness, leaves its input as <scratch>/<kind>-crash-*, and makes this script fail.
# With CORPUS_OUT, the grown corpus is merged (minimised) into CORPUS_OUT/<kind>.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
out="${2:-}"
python=".venv/bin/python"
scratch="$(mktemp -d -t fuzz-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
# one harness: fuzz it, report a finding, merge the grown corpus when asked; 1 on a finding
fuzz() {
  local kind="$1" limits=(-rss_limit_mb=2048) failed=0
  mkdir -p "$scratch/$kind"
  cp tests/fuzz/corpus/"$kind"/* "$scratch/$kind/"
  [ "$kind" = saml ] && limits+=(-malloc_limit_mb=1024 -max_len=65536) || limits+=(-max_len=8192)
  if ! PYTHONPATH=. nice -n 10 "$python" "tests/fuzz/fuzz_$kind.py" "$scratch/$kind" \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$scratch/$kind-" \
      "${limits[@]}" 2>"$scratch/$kind.log"; then
    failed=1
  fi
  if [ -n "$out" ]; then
    mkdir -p "$out/$kind"
    PYTHONPATH=. "$python" "tests/fuzz/fuzz_$kind.py" -merge=1 "$out/$kind" "$scratch/$kind" \
      "${limits[@]}" 2>>"$scratch/$kind.log" || true
  fi
  return "$failed"
}
# the two harnesses side by side (each is one process on one core), reported in turn
pids=()
for kind in jwt saml; do
  echo "-- fuzz_$kind: ${seconds}s"
  fuzz "$kind" &
  pids+=($!)
done
status=0
for i in 0 1; do
  kind=$([ "$i" = 0 ] && echo jwt || echo saml)
  if ! wait "${pids[$i]}"; then
    status=1
    echo "-- fuzz_$kind found something:"
    tail -n 40 "$scratch/$kind.log"
    ls "$scratch"/"$kind"-* 2>/dev/null && cp "$scratch"/"$kind"-* . 2>/dev/null || true
  fi
  echo "-- fuzz_$kind:"
  grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$scratch/$kind.log" || true
done
exit "$status"
