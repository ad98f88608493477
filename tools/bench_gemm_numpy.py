#!/usr/bin/env python3
"""numpy (OpenBLAS) reference for `peft4j bench gemm`: same shapes, same JSON on stdout, logs on stderr.

Run it with the environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (they slow a current numpy on this CPU):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 tools/bench_gemm_numpy.py --threads 2 --json

Variants (see BenchGemmCommand): f32 and packed are plain a @ b; nt is a @ w.T; bf16 / bf16packed have no numpy
equivalent (numpy has no bfloat16) and are run as their F32 nt twin, flagged "as_f32": true.
"""
import argparse
import json
import os
import statistics
import sys
import time

DEFAULT_SHAPES = ("1024x1024x1024,512x768x768,512x2048x5632,512x768x16,512x16x768,"
                  "512x768x768@bf16packed,1x2048x5632@bf16")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def blas_info():
    """Which BLAS numpy uses, and the kernel (core type) it picked at run time."""
    try:
        from threadpoolctl import threadpool_info
        return [{k: v for k, v in d.items() if k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
                for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        return "threadpoolctl not installed: BLAS kernel unknown"


def limit_threads(n):
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        log("threadpoolctl not installed: thread count comes from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set before start")
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="MxKxN[@variant],... (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per shape (default: %(default)s)")
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per timed run (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args()
    # Set before numpy loads OpenBLAS, so even without threadpoolctl the count holds.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import numpy as np
    limiter = limit_threads(args.threads)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            log(f"warning: {var}={os.environ[var]} is set; it slows a current numpy on this CPU (run with env -u {var})")
    info = blas_info()
    log(f"numpy {np.__version__}, BLAS: {info}")

    results = []
    rng = np.random.default_rng(1)
    for spec in args.shapes.split(","):
        spec = spec.strip()
        if not spec:
            continue
        dims, _, variant = spec.partition("@")
        variant = variant or "f32"
        m, k, n = (int(x) for x in dims.lower().split("x"))
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        if variant in ("nt", "bf16", "bf16packed"):
            w = rng.uniform(-1, 1, (n, k)).astype(np.float32)
            b = w.T
        else:
            b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        c = np.empty((m, n), dtype=np.float32)
        flops = 2.0 * m * k * n
        end = time.perf_counter() + 3 * args.min_time
        reps = 0
        t0 = time.perf_counter()
        while time.perf_counter() < end:
            np.matmul(a, b, out=c)
            reps += 1
        per_op = (time.perf_counter() - t0) / max(1, reps)
        inner = max(1, min(1_000_000, int(args.min_time / max(per_op, 1e-9))))
        gflops = []
        for _ in range(args.runs):
            t = time.perf_counter()
            for _ in range(inner):
                np.matmul(a, b, out=c)
            gflops.append(flops / ((time.perf_counter() - t) / inner) / 1e9)
        row = {"m": m, "k": k, "n": n, "variant": variant, "gflops": round(max(gflops), 2),
               "median_gflops": round(statistics.median(gflops), 2)}
        if variant in ("bf16", "bf16packed"):
            row["as_f32"] = True
        results.append(row)
        log(f"{spec:<24} best {max(gflops):8.1f} GFLOP/s  median {statistics.median(gflops):8.1f}")
    out = {"threads": args.threads, "numpy": np.__version__, "blas": info, "results": results}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{'shape (MxKxN)':<24} {'GFLOP/s':>10} {'median':>10}")
        for r in results:
            label = f"{r['m']}x{r['k']}x{r['n']}" + ("" if r["variant"] == "f32" else "@" + r["variant"])
            print(f"{label:<24} {r['gflops']:10.1f} {r['median_gflops']:10.1f}")
    del limiter


if __name__ == "__main__":
    main()
