package io.peft4j.linalg;

import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static io.peft4j.linalg.Matrices.*;
import static org.junit.jupiter.api.Assertions.*;

class SvdTest {
    private static final double TOL = 1e-13;

    private static void checkSvd(double[] a, int m, int n, Svd.Result r, String what) {
        int k = Math.min(m, n);
        assertEquals(k, r.k(), what + " k");
        assertEquals(m * k, r.u().length, what + " U size");
        assertEquals(n * k, r.v().length, what + " V size");
        assertDescendingNonNegative(r.s(), what + " S");
        assertOrthonormal(r.u(), m, k, TOL, what + " U");
        assertOrthonormal(r.v(), n, k, TOL, what + " V");
        double err = Dense.frobeniusDiff(r.reconstruct(), a) / Math.max(Dense.frobenius(a), Double.MIN_NORMAL);
        assertTrue(err <= TOL, what + ": ||U S V^T - A|| / ||A|| = " + err);
    }

    @Test
    void reconstructsRandomTallWideAndTinyShapes() {
        long seed = 100;
        for (int[] s : SHAPES) {
            int m = s[0], n = s[1];
            double[] a = gaussian(seed++, m, n);
            checkSvd(a, m, n, Svd.thin(a, m, n), "svd " + shape(m, n));
        }
    }

    @Test
    void oneByOneIsAbsoluteValueAndSign() {
        Svd.Result r = Svd.thin(new double[] {-3.5}, 1, 1);
        assertEquals(3.5, r.s()[0], 0);
        assertEquals(-3.5, r.u()[0] * r.s()[0] * r.v()[0], 1e-15);
    }

    @Test
    void rankDeficientInputsGiveZeroTailAndOrthonormalVectors() {
        int[][] cases = {{60, 40, 5}, {40, 60, 5}, {50, 50, 1}, {120, 30, 29}, {30, 30, 0}};
        for (int[] c : cases) {
            int m = c[0], n = c[1], rank = c[2];
            double[] a = rank == 0 ? new double[m * n] : lowRank(c[0] + c[2], m, n, rank);
            Svd.Result r = Svd.thin(a, m, n);
            String what = "rank-" + rank + " " + shape(m, n);
            checkSvd(a, m, n, r, what);
            for (int i = rank; i < r.k(); i++)
                assertTrue(r.s()[i] <= 1e-13 * Math.max(r.s()[0], 1), what + ": S[" + i + "] = " + r.s()[i] + " should vanish");
            if (rank > 0) assertTrue(r.s()[rank - 1] > 1e-6 * r.s()[0], what + ": S[rank-1] too small");
        }
        // Exactly repeated singular values: an orthogonal matrix has S = 1 everywhere.
        double[] q = orthonormal(7, 40, 40);
        Svd.Result r = Svd.thin(q, 40, 40);
        for (double s : r.s()) assertEquals(1, s, 1e-13);
        checkSvd(q, 40, 40, r, "orthogonal [40, 40]");
        // A zero column and a zero row.
        double[] z = gaussian(8, 20, 10);
        for (int i = 0; i < 20; i++) z[i * 10 + 3] = 0;
        Arrays.fill(z, 50, 60, 0);
        checkSvd(z, 20, 10, Svd.thin(z, 20, 10), "zero row and column");
    }

    @Test
    void recoversPrescribedSpectrumToHighRelativeAccuracy() {
        for (int[] s : new int[][] {{80, 50}, {50, 80}, {150, 20}, {64, 64}}) {
            int m = s[0], n = s[1], k = Math.min(m, n);
            double[] sv = new double[k];
            for (int i = 0; i < k; i++) sv[i] = 10.0 - 9.0 * i / Math.max(1, k - 1);   // from 10 down to 1: cond 10
            double[] a = withSingularValues(m * 31L + n, m, n, sv);
            double[] got = Svd.thin(a, m, n).s();
            for (int i = 0; i < k; i++)
                assertEquals(sv[i], got[i], 1e-12 * sv[i], "S[" + i + "] of " + shape(m, n));
        }
    }

    @Test
    void singularValuesAreSquareRootsOfEigenvaluesOfAtA() {
        for (int[] s : new int[][] {{70, 40}, {40, 70}, {33, 33}}) {
            int m = s[0], n = s[1];
            double[] a = gaussian(m + 7L * n, m, n);
            double[] ata = Dense.matmulTN(a, m, n, a, n);
            double[] eig = SymmetricEigen.values(ata, n);
            double[] sv = Svd.thin(a, m, n).s();
            int k = Math.min(m, n);
            for (int i = 0; i < k; i++)
                assertEquals(Math.sqrt(Math.max(0, eig[i])), sv[i], 1e-10 * sv[0], "S[" + i + "] vs sqrt(eig(A^T A)) for " + shape(m, n));
            for (int i = k; i < n; i++) assertEquals(0, eig[i], 1e-12 * eig[0], "eigenvalue " + i + " of a rank-" + k + " Gram matrix");
        }
    }

    @Test
    void truncatedIsTheBestRankRApproximation() {
        int m = 90, n = 70;
        double[] a = gaussian(404, m, n);
        Svd.Result full = Svd.thin(a, m, n);
        for (int r : new int[] {0, 1, 5, 30, 70}) {
            Svd.Result t = Svd.truncated(a, m, n, r);
            assertEquals(r, t.k());
            double tail = 0;
            for (int i = r; i < full.k(); i++) tail += full.s()[i] * full.s()[i];
            double err = Dense.frobeniusDiff(t.reconstruct(), a);
            assertEquals(Math.sqrt(tail), err, 1e-10 * Dense.frobenius(a), "Eckart-Young error at rank " + r);
            if (r > 0 && r < n) {
                // Any other rank-r approximation (here: projecting onto a random r-dim column space) is worse.
                double[] q = orthonormal(r, m, r);
                double[] proj = Dense.matmul(q, m, r, Dense.matmulTN(q, m, r, a, n), n);
                assertTrue(Dense.frobeniusDiff(proj, a) > err, "a random rank-" + r + " projection beat the truncated SVD");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> Svd.truncated(a, m, n, 71));
    }

    @Test
    void valuesOnlyMatchesFullAndScalingIsExact() {
        double[] a = gaussian(9, 45, 25);
        double[] s = Svd.thin(a, 45, 25).s();
        double[] v = Svd.values(a, 45, 25);
        for (int i = 0; i < s.length; i++) assertEquals(s[i], v[i], 1e-13 * s[0]);
        for (double scale : new double[] {1e-200, 1e200}) {
            double[] b = a.clone();
            for (int i = 0; i < b.length; i++) b[i] *= scale;
            double[] sb = Svd.thin(b, 45, 25).s();
            for (int i = 0; i < s.length; i++) assertEquals(s[i], sb[i] / scale, 1e-13 * s[0], "S[" + i + "] at scale " + scale);
        }
        assertThrows(IllegalArgumentException.class, () -> Svd.thin(new double[] {1, Double.NaN}, 1, 2));
    }

    @Test
    void parallelAndSingleThreadGiveIdenticalBits() {
        int m = 180, n = 160;
        double[] a = gaussian(77, m, n);
        int before = Parallel.threads();
        Svd.Result one, two;
        try {
            Parallel.setThreads(1);
            one = Svd.thin(a, m, n);
            Parallel.setThreads(2);
            two = Svd.thin(a, m, n);
        } finally {
            Parallel.setThreads(before);
        }
        assertArrayEquals(one.s(), two.s(), 0);
        assertArrayEquals(one.u(), two.u(), 0);
        assertArrayEquals(one.v(), two.v(), 0);
    }

    @Test
    void tensorOverloadsHaveTorchShapes() {
        Tensor t = Tensor.randn(3, 1f, 12, 5);
        Svd.Result r = Svd.thin(t);
        assertArrayEquals(new int[] {12, 5}, r.uTensor().shape());
        assertArrayEquals(new int[] {5}, r.sTensor().shape());
        assertArrayEquals(new int[] {5, 5}, r.vtTensor().shape());
        assertArrayEquals(Dense.transpose(r.v(), 5, 5), r.vt(), 0);
        Svd.Result tr = Svd.truncated(t, 2);
        assertArrayEquals(new int[] {12, 2}, tr.uTensor().shape());
        assertArrayEquals(new int[] {5, 2}, tr.vTensor().shape());
        assertEquals(r.s()[1], tr.s()[1], 0);
    }
}
