"""Reference factorisations for io.peft4j.linalg, computed with PyTorch (LAPACK) in float64.

Run from the repository root (PyTorch 1.13 + numpy)::

    /usr/bin/python3 tools/golden_linalg.py        # writes core/src/test/resources/golden/linalg/reference.txt

Deterministic (fixed seed): re-running rewrites an identical file. CI never runs it; ``LinalgGoldenTest`` reads it.

Text format, one block per case::

    case <name> <op> <m> <n>
    A <m*n values, row-major>
    <key> <values>...          # op-specific outputs, row-major, %.17g

Ops: ``qr`` (torch.linalg.qr reduced: Q, R -- fixes the LAPACK sign convention), ``lu`` (torch.linalg.lu_factor:
LU packed and 0-based pivots in LAPACK's sequential-swap form), ``svdvals`` (S), ``eigvalsh`` (W, ascending as torch).
"""

import pathlib

import torch

OUT = pathlib.Path("core/src/test/resources/golden/linalg/reference.txt")


def fmt(t):
    return " ".join("%.17g" % v for v in t.reshape(-1).tolist())


def main():
    g = torch.Generator().manual_seed(20240611)
    cases = []

    def rnd(m, n):
        return torch.randn(m, n, generator=g, dtype=torch.float64)

    neg = rnd(5, 5)
    neg[0, 0] = -abs(neg[0, 0])
    with_zero_col = rnd(6, 4)
    with_zero_col[:, 1] = 0
    qr_inputs = {
        "tall": rnd(7, 4),
        "wide": rnd(3, 6),
        "square_negative_pivot": neg,
        "identity": torch.eye(4, dtype=torch.float64),
        "upper_triangular": torch.triu(rnd(4, 4)),
        "zero_column": with_zero_col,
    }
    for name, a in qr_inputs.items():
        q, r = torch.linalg.qr(a, mode="reduced")
        cases.append((name, "qr", a, [("Q", q), ("R", r)]))

    for name, a in {"lu_square": rnd(6, 6), "lu_tall": rnd(7, 4), "lu_wide": rnd(4, 7)}.items():
        lu, piv = torch.linalg.lu_factor(a)
        cases.append((name, "lu", a, [("LU", lu), ("PIV", (piv - 1).to(torch.float64))]))

    for name, a in {"svd_tall": rnd(9, 5), "svd_wide": rnd(4, 8)}.items():
        cases.append((name, "svdvals", a, [("S", torch.linalg.svdvals(a))]))

    s = rnd(7, 7)
    cases.append(("eig_sym", "eigvalsh", (s + s.T) / 2, [("W", torch.linalg.eigvalsh((s + s.T) / 2))]))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as f:
        for name, op, a, outs in cases:
            f.write("case %s %s %d %d\n" % (name, op, a.shape[0], a.shape[1]))
            f.write("A %s\n" % fmt(a))
            for key, t in outs:
                f.write("%s %s\n" % (key, fmt(t)))
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
