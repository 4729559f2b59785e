# Shared by the side-by-side scripts (compare.sh, memory.sh): sourced, not run.
# Builds trakx, checks for opentracker, and stops the tracker under test
# ($pid) on exit.

make -s build
trakx=$PWD/bin/trakx
command -v opentracker >/dev/null || { echo "opentracker is not installed (apt-get install opentracker)"; exit 1; }

pid=
stop_tracker() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi
}
trap stop_tracker EXIT

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
