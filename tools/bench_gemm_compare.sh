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
#   numpy. The raw rounds (label, steal %, GFLOP/s per shape) are kept in ${OUT:-/tmp/bench_gemm_compare.txt}. Each
#   launch's share of stolen time (/proc/stat) is recorded; the summary also tabulates the rounds with steal < STEAL_MAX %.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rounds=6 threads=2 runs=15 mintime=0.05
shapes="512x512x512,1024x1024x1024,512x768x768,512x2048x5632,512x768x16,512x16x768"
while getopts "r:t:s:n:m:" o; do
  case "$o" in
    r) rounds=$OPTARG ;; t) threads=$OPTARG ;; s) shapes=$OPTARG ;; n) runs=$OPTARG ;; m) mintime=$OPTARG ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
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
# Share of the machine's time stolen by the hypervisor (the "steal" column of /proc/stat) since the last call, in %.
# Rounds in which a side ran with much steal measure the host more than the code; the summary repeats the table over
# the rounds in which every side ran with less than STEAL_MAX % (default 5).
cpu_prev=($(grep '^cpu ' /proc/stat))
steal_pct() {
  local cur=($(grep '^cpu ' /proc/stat)) tot=0 i
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + cur[i] - cpu_prev[i])); done
  steal=$(( tot > 0 ? 100 * (cur[8] - cpu_prev[8]) / tot : 0 ))
  cpu_prev=("${cur[@]}")
}
for r in $(seq "$rounds"); do
  for side in "$@"; do
    label="${side%%=*}" jar="${side#*=}"
    steal_pct
    vals="$("$java" --add-modules jdk.incubator.vector -jar "$jar" bench gemm --threads "$threads" --json \
      --runs "$runs" --min-time "$mintime" --shapes "$shapes" 2>/dev/null | gflops)"
    steal_pct
    line="$label $steal $vals"
    echo "round $r: $line" >&2; echo "$line" >> "$out"
  done
  steal_pct
  vals="$(python3 "$here/tools/bench_gemm_numpy.py" --threads "$threads" --json --runs "$runs" \
    --min-time "$mintime" --shapes "$shapes" 2>/dev/null | gflops)"
  steal_pct
  line="numpy $steal $vals"
  echo "round $r: $line" >&2; echo "$line" >> "$out"
done
python3 - "$out" "$shapes" "${STEAL_MAX:-5}" <<'EOF'
import statistics as st, sys
labels, rounds = [], []          # rounds: [{label: (steal %, [GFLOP/s per shape])}]
for line in open(sys.argv[1]):
    label, steal, *vals = line.split()
    if label not in labels: labels.append(label)
    if not rounds or label in rounds[-1]: rounds.append({})
    rounds[-1][label] = (int(steal), [float(v) for v in vals])
shapes, steal_max = sys.argv[2].split(","), int(sys.argv[3])
sides = [l for l in labels if l != "numpy"]

def table(rs, title):
    print(f"{len(rs)} {title}; GFLOP/s median (max); ratio = median of the per-round ratios to numpy (range)")
    if not rs: return
    print("| shape | " + " | ".join(sides) + " | numpy | " + " | ".join(f"{l} / numpy" for l in sides) + " |")
    print("|---" * (2 + 2 * len(sides)) + "|")
    for i, shape in enumerate(shapes):
        def cell(label):
            col = [r[label][1][i] for r in rs]
            return f"{st.median(col):.1f} ({max(col):.1f})"
        ratios = []
        for l in sides:
            q = [r[l][1][i] / r["numpy"][1][i] for r in rs]
            ratios.append(f"{st.median(q):.2f} ({min(q):.2f}-{max(q):.2f})")
        print(f"| {shape} | " + " | ".join(cell(l) for l in sides) + f" | {cell('numpy')} | " + " | ".join(ratios) + " |")

complete = [r for r in rounds if all(l in r for l in labels)]
print("steal % per round (" + "/".join(labels) + "): " + "; ".join("/".join(str(r[l][0]) for l in labels) for r in complete))
table(complete, "alternating rounds")
table([r for r in complete if all(r[l][0] < steal_max for l in labels)], f"of them with steal < {steal_max}% for every side")
EOF
