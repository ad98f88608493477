#!/usr/bin/env bash
# Side-by-side GEMM benchmark: alternates `peft4j bench gemm --json` (one or more jars) with
# tools/bench_gemm_numpy.py for several rounds, then prints per-shape medians, maxima and the median of the
# per-round ratios to numpy (with their range). On a noisy host, launch-to-launch speeds move 20-40%; alternating
# the sides round by round and comparing within each round is what makes the ratios meaningful.
#
# Usage: tools/bench_gemm_compare.sh [-r ROUNDS] [-t THREADS] [-s SHAPES] [-n RUNS] [-m MIN_TIME] [LABEL=JAR ...]
#   defaults: 6 rounds, 2 threads, runs 15 of 0.05 s (each side's best run is kept), the issue's five shapes after a
#   throwaway 512x512x512 (the first shape of a list can be measured while C2 still compiles), and
#   peft4j=cli/target/peft4j.jar. Needs a JDK 25 (JAVA_HOME or /usr/lib/jvm/temurin-25-jdk-amd64) and python3 with
#   numpy. The raw rounds are kept in ${OUT:-/tmp/bench_gemm_compare.txt}.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rounds=6 threads=2 runs=15 mintime=0.05
shapes="512x512x512,1024x1024x1024,512x768x768,512x2048x5632,512x768x16,512x16x768"
while getopts "r:t:s:n:m:" o; do
  case "$o" in
    r) rounds=$OPTARG ;; t) threads=$OPTARG ;; s) shapes=$OPTARG ;; n) runs=$OPTARG ;; m) mintime=$OPTARG ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "peft4j=$here/cli/target/peft4j.jar"
java="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java"
[ -x "$java" ] || { echo "bench_gemm_compare: no JDK 25 at $java (set JAVA_HOME)" >&2; exit 1; }
for side in "$@"; do
  jar="${side#*=}"
  [ -f "$jar" ] || { echo "bench_gemm_compare: no jar at $jar (build with: mvn -q package -DskipTests)" >&2; exit 1; }
done
out="${OUT:-/tmp/bench_gemm_compare.txt}"
: > "$out"
gflops() { python3 -c 'import json,sys; print(" ".join(str(r["gflops"]) for r in json.load(sys.stdin)["results"]))'; }
for r in $(seq "$rounds"); do
  for side in "$@"; do
    label="${side%%=*}" jar="${side#*=}"
    line="$label $("$java" --add-modules jdk.incubator.vector -jar "$jar" bench gemm --threads "$threads" --json \
      --runs "$runs" --min-time "$mintime" --shapes "$shapes" 2>/dev/null | gflops)"
    echo "round $r: $line" >&2; echo "$line" >> "$out"
  done
  line="numpy $(python3 "$here/tools/bench_gemm_numpy.py" --threads "$threads" --json --runs "$runs" \
    --min-time "$mintime" --shapes "$shapes" 2>/dev/null | gflops)"
  echo "round $r: $line" >&2; echo "$line" >> "$out"
done
python3 - "$out" "$shapes" <<'EOF'
import collections, statistics as st, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, *vals = line.split()
    rows[label].append([float(v) for v in vals])
shapes = sys.argv[2].split(",")
ref = rows.pop("numpy")
print(f"{len(ref)} alternating rounds; GFLOP/s median (max); ratio = median of the per-round ratios to numpy (range)")
print("| shape | " + " | ".join(rows) + " | numpy | " + " | ".join(f"{l} / numpy" for l in rows) + " |")
print("|---" * (2 + 2 * len(rows)) + "|")
for i, shape in enumerate(shapes):
    def cell(runs):
        col = [r[i] for r in runs]
        return f"{st.median(col):.1f} ({max(col):.1f})"
    ratios = []
    for runs in rows.values():
        rs = [r[i] / n[i] for r, n in zip(runs, ref)]
        ratios.append(f"{st.median(rs):.2f} ({min(rs):.2f}-{max(rs):.2f})")
    print(f"| {shape} | " + " | ".join(cell(runs) for runs in rows.values()) + f" | {cell(ref)} | " + " | ".join(ratios) + " |")
EOF
