#!/usr/bin/env bash
# LoRA training throughput and peak memory, peft4j vs PyTorch, side by side on the same machine.
#   tools/bench_train_compare.sh [tiny|small]
# PyTorch: Debian's python3-torch (apt-get install python3-torch). Its default BLAS here may be the slow reference
# one: point OPENBLAS_LIB at an OpenBLAS libblas directory (e.g. an unpacked libopenblas0-pthread package) to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-small}"
heap="${PEFT4J_BENCH_HEAP:--Xmx2g}"
peft=$(PEFT4J_JAVA_OPTS="$heap" ./peft4j bench train "$config" --json 2>/dev/null | tail -1)
torch=$(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX ${OPENBLAS_LIB:+LD_LIBRARY_PATH=$OPENBLAS_LIB} \
        /usr/bin/python3 tools/bench_train_torch.py "$config" 2>/dev/null | tail -1)
/usr/bin/python3 - "$peft" "$torch" "$heap" <<'PY'
import json, sys
p, t, heap = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"{'':24}{'tokens/s':>10}{'peak RSS MB':>14}")
print(f"{'peft4j (' + heap + ')':24}{p['tokens_per_s']:10.0f}{p['peak_rss_mb']:14.0f}")
print(f"{'pytorch ' + t['torch']:24}{t['tokens_per_s']:10.0f}{t['peak_rss_mb']:14.0f}")
print(f"{'ratio':24}{p['tokens_per_s'] / t['tokens_per_s']:10.2f}{p['peak_rss_mb'] / t['peak_rss_mb']:14.2f}")
PY
