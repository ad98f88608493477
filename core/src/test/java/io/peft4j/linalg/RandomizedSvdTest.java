package io.peft4j.linalg;

import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static io.peft4j.linalg.Matrices.*;
import static org.junit.jupiter.api.Assertions.*;

class RandomizedSvdTest {
    /** Singular values 0.8^i: a decaying spectrum like a trained weight's head. */
    private static double[] decaying(int k) {
        double[] s = new double[k];
        for (int i = 0; i < k; i++) s[i] = 5 * Math.pow(0.8, i);
        return s;
    }

    @Test
    void topValuesAndVectorsMatchExactSvdOnDecayingSpectrum() {
        for (int[] sh : new int[][] {{200, 150}, {150, 200}}) {
            int m = sh[0], n = sh[1], r = 12;
            double[] a = withSingularValues(m + n, m, n, decaying(Math.min(m, n)));
            Svd.Result exact = Svd.thin(a, m, n);
            Svd.Result approx = RandomizedSvd.compute(a, m, n, r, 10, 4, 42);
            assertEquals(r, approx.k());
            assertOrthonormal(approx.u(), m, r, 1e-13, "randomized U");
            assertOrthonormal(approx.v(), n, r, 1e-13, "randomized V");
            for (int i = 0; i < r; i++) {
                assertEquals(exact.s()[i], approx.s()[i], 1e-6 * exact.s()[i], "S[" + i + "] of " + shape(m, n));
                // Same singular direction up to sign.
                double du = 0, dv = 0;
                for (int j = 0; j < m; j++) du += exact.u()[j * exact.k() + i] * approx.u()[j * r + i];
                for (int j = 0; j < n; j++) dv += exact.v()[j * exact.k() + i] * approx.v()[j * r + i];
                assertEquals(1, Math.abs(du), 1e-6, "|<u_i, u~_i>| for i=" + i);
                assertEquals(1, Math.abs(dv), 1e-6, "|<v_i, v~_i>| for i=" + i);
            }
            // The factors are a consistent SVD of their own: U^T A V = diag(S).
            double[] uta = Dense.matmulTN(approx.u(), m, r, a, n);
            double[] utav = Dense.matmul(uta, r, n, approx.v(), r);
            for (int i = 0; i < r; i++) assertEquals(approx.s()[i], utav[i * r + i], 1e-12 * approx.s()[0]);
        }
    }

    @Test
    void exactOnLowRankInputsAndDeterministicPerSeed() {
        int m = 120, n = 90, rank = 6;
        double[] a = lowRank(8, m, n, rank);
        Svd.Result exact = Svd.thin(a, m, n);
        // Sketch width >= rank: the range is captured exactly even without power iterations.
        Svd.Result r = RandomizedSvd.compute(a, m, n, rank, 0, 0, 1);
        for (int i = 0; i < rank; i++) assertEquals(exact.s()[i], r.s()[i], 1e-11 * exact.s()[0]);
        assertRelErr(r.reconstruct(), a, 1e-12, "rank-6 reconstruction");
        Svd.Result again = RandomizedSvd.compute(a, m, n, rank, 0, 0, 1);
        assertArrayEquals(r.u(), again.u(), 0);
        Svd.Result other = RandomizedSvd.compute(a, m, n, rank, 0, 0, 2);
        assertFalse(java.util.Arrays.equals(r.u(), other.u()) && java.util.Arrays.equals(r.v(), other.v()),
                "a different seed should change the rounding at least");
    }

    @Test
    void moreIterationsDoNotHurtAndTorchStyleNoOversampleWorks() {
        int m = 160, n = 160, r = 8;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = 1.0 / (1 + i);   // slow decay: the hard case for a sketch
        double[] a = withSingularValues(3, m, n, s);
        double prevErr = Double.POSITIVE_INFINITY;
        for (int niter : new int[] {0, 2, 8}) {
            Svd.Result t = RandomizedSvd.compute(a, m, n, r, 0, niter, 5);   // torch.svd_lowrank(A, q=r, niter)
            double err = 0;
            for (int i = 0; i < r; i++) err = Math.max(err, Math.abs(t.s()[i] - s[i]) / s[i]);
            // Each value of a projection is at most the true one (interlacing); power iterations close the gap.
            for (int i = 0; i < r; i++) assertTrue(t.s()[i] <= s[i] * (1 + 1e-12), "S[" + i + "] exceeds the truth");
            assertTrue(err <= prevErr * 1.05, "niter " + niter + " made the top values worse: " + err + " vs " + prevErr);
            prevErr = err;
        }
        assertTrue(prevErr < 0.05, "8 power iterations should get the top-8 of a 1/i spectrum within 5%, got " + prevErr);
    }

    @Test
    void tensorOverloadAndArgumentChecks() {
        Tensor t = Tensor.randn(2, 1f, 30, 20);
        Svd.Result r = RandomizedSvd.compute(t, 4, 2, 9);
        assertArrayEquals(new int[] {30, 4}, r.uTensor().shape());
        assertArrayEquals(new int[] {20, 4}, r.vTensor().shape());
        assertThrows(IllegalArgumentException.class, () -> RandomizedSvd.compute(t, 21, 2, 9));
        assertThrows(IllegalArgumentException.class, () -> RandomizedSvd.compute(new double[6], 2, 3, 1, -1, 0, 0));
        assertEquals(0, RandomizedSvd.compute(new double[6], 2, 3, 0, 0, 0, 0).k());
    }

    /**
     * Timing, not a correctness check: run with {@code -Dpeft4j.linalg.bench=true}. Prints full vs randomized
     * SVD times for square matrices ({@code -Dpeft4j.linalg.benchSizes=256,512,1024}), all measured in this process.
     */
    @Test
    void speedVersusFullSvd() {
        Assumptions.assumeTrue(Boolean.getBoolean("peft4j.linalg.bench"), "timing run only with -Dpeft4j.linalg.bench=true");
        for (String size : System.getProperty("peft4j.linalg.benchSizes", "256,512,1024").split(",")) {
            int n = Integer.parseInt(size.trim());
            double[] a = gaussian(n, n, n);
            RandomizedSvd.compute(a, n, n, 16, 8, 4, 1);   // warm-up
            long t0 = System.nanoTime();
            Svd.Result rs = RandomizedSvd.compute(a, n, n, 16, 8, 4, 1);
            long t1 = System.nanoTime();
            Svd.Result full = Svd.thin(a, n, n);
            long t2 = System.nanoTime();
            double[] vals = Svd.values(a, n, n);
            long t3 = System.nanoTime();
            System.out.printf("n=%d randomized r=16 p=8 niter=4: %.3f s, full thin SVD: %.3f s (%.0fx), values only: %.3f s, S0 %.6g vs %.6g%n",
                    n, (t1 - t0) / 1e9, (t2 - t1) / 1e9, (double) (t2 - t1) / (t1 - t0), (t3 - t2) / 1e9, rs.s()[0], full.s()[0] + 0 * vals[0]);
        }
    }
}
