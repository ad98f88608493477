package io.peft4j.linalg;

import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static io.peft4j.linalg.Matrices.*;
import static org.junit.jupiter.api.Assertions.*;

class LuTest {
    private static double[] permuteRows(double[] a, int m, int n, int[] perm) {
        double[] pa = new double[m * n];
        for (int i = 0; i < m; i++) System.arraycopy(a, perm[i] * n, pa, i * n, n);
        return pa;
    }

    private static void checkLu(double[] a, int m, int n, Lu.Result lu, String what) {
        int k = Math.min(m, n);
        double[] l = lu.l(), u = lu.u();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < k; j++) {
                double x = l[i * k + j];
                if (j > i) assertEquals(0, x, 0, what + ": L above diagonal at (" + i + ", " + j + ")");
                else if (j == i) assertEquals(1, x, 0, what + ": L diagonal at " + i);
                else assertTrue(Math.abs(x) <= 1, what + ": partial pivoting bounds |L| by 1, got " + x);
            }
        assertUpperTriangular(u, k, n, what + " U");
        double[] pa = permuteRows(a, m, n, lu.perm());
        assertArrayEquals(pa, Dense.matmul(lu.permutationMatrix(), m, m, a, n), 0, what + ": P matrix vs perm");
        double scale = Math.max(Dense.frobenius(a), Double.MIN_NORMAL);
        double err = Dense.frobeniusDiff(lu.product(), pa) / scale;
        assertTrue(err <= 1e-14, what + ": ||P A - L U|| / ||A|| = " + err);
    }

    @Test
    void factorsRandomSquareTallWideAndTinyShapes() {
        long seed = 300;
        for (int[] s : SHAPES) {
            double[] a = gaussian(seed++, s[0], s[1]);
            checkLu(a, s[0], s[1], Lu.of(a, s[0], s[1]), "lu " + shape(s[0], s[1]));
        }
    }

    @Test
    void singularInputsFactorButHaveNoLdu() {
        double[] low = lowRank(4, 30, 30, 10);
        Lu.Result lu = Lu.of(low, 30, 30);
        checkLu(low, 30, 30, lu, "rank-10 [30, 30]");
        double[] zeroCol = gaussian(6, 8, 8);
        for (int i = 0; i < 8; i++) zeroCol[i * 8 + 2] = 0;
        Lu.Result z = Lu.of(zeroCol, 8, 8);
        checkLu(zeroCol, 8, 8, z, "zero column");
        ArithmeticException e = assertThrows(ArithmeticException.class, z::ldu);
        assertTrue(e.getMessage().contains("pivot 2"), "message should name the zero pivot: " + e.getMessage());
        checkLu(new double[12], 3, 4, Lu.of(new double[12], 3, 4), "zero [3, 4]");
    }

    @Test
    void lduFormReconstructsWithUnitUpperFactor() {
        for (int[] s : new int[][] {{1, 1}, {6, 6}, {50, 50}, {40, 25}, {25, 40}}) {
            int m = s[0], n = s[1], k = Math.min(m, n);
            double[] a = gaussian(m * 13L + n, m, n);
            Lu.Result lu = Lu.of(a, m, n);
            Lu.Ldu ldu = lu.ldu();
            for (int i = 0; i < k; i++) {
                assertEquals(1, ldu.u()[i * n + i], 0, "U1 diagonal at " + i);
                assertEquals(lu.u()[i * n + i], ldu.d()[i], 0, "D is diag(U) at " + i);
            }
            assertUpperTriangular(ldu.u(), k, n, "U1");
            assertRelErr(ldu.product(), permuteRows(a, m, n, lu.perm()), 1e-14, "L D U1 vs P A for " + shape(m, n));
        }
    }

    @Test
    void determinantSignFromSwapsAndTensorOverload() {
        // det(A) = (-1)^swaps * prod(diag U); compare with the product of eigenvalues of a symmetric matrix.
        int n = 12;
        double[] a = symmetric(17, n);
        Lu.Result lu = Lu.of(a, n, n);
        double det = lu.swaps() % 2 == 0 ? 1 : -1;
        for (int i = 0; i < n; i++) det *= lu.u()[i * n + i];
        double prod = 1;
        for (double w : SymmetricEigen.values(a, n)) prod *= w;
        assertEquals(prod, det, 1e-10 * Math.abs(prod));
        Tensor t = Dense.toTensor(a, n, n);
        assertArrayEquals(new int[] {n, n}, Lu.of(t).lTensor().shape());
    }
}
