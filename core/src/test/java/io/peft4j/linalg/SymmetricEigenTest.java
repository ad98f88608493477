package io.peft4j.linalg;

import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static io.peft4j.linalg.Matrices.*;
import static org.junit.jupiter.api.Assertions.*;

class SymmetricEigenTest {
    private static void checkEigen(double[] a, int n, SymmetricEigen.Result r, String what) {
        double[] w = r.values(), v = r.vectors();
        for (int i = 1; i < n; i++) assertTrue(w[i] <= w[i - 1], what + ": not descending at " + i);
        assertOrthonormal(v, n, n, 1e-13, what + " V");
        assertRelErr(r.reconstruct(), a, 1e-13, what + " V diag(w) V^T");
        // Each column is an eigenvector: A v_j = w_j v_j.
        double[] av = Dense.matmul(a, n, n, v, n);
        double scale = Math.max(Dense.maxAbs(w), Double.MIN_NORMAL);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                assertEquals(w[j] * v[i * n + j], av[i * n + j], 1e-12 * scale, what + ": (A V - V W)[" + i + "][" + j + "]");
    }

    @Test
    void decomposesRandomSymmetricMatrices() {
        for (int n : new int[] {1, 2, 3, 10, 57, 150}) {
            double[] a = symmetric(n, n);
            checkEigen(a, n, SymmetricEigen.of(a, n), "random symmetric n=" + n);
        }
    }

    @Test
    void recoversPrescribedSpectrumWithRepeatsAndNegatives() {
        int n = 40;
        double[] w = new double[n];
        for (int i = 0; i < n; i++) w[i] = i < 10 ? 3.0 : (i < 25 ? 0.5 - 0.1 * i : -2.0);   // repeated 3 and -2
        java.util.Arrays.sort(w);
        double[] desc = new double[n];
        for (int i = 0; i < n; i++) desc[i] = w[n - 1 - i];
        double[] q = orthonormal(5, n, n);
        double[] a = Dense.scaleProduct(q, n, desc, q, n);
        for (int i = 0; i < n; i++) for (int j = 0; j < i; j++) a[j * n + i] = a[i * n + j];   // exact symmetry
        SymmetricEigen.Result r = SymmetricEigen.of(a, n);
        for (int i = 0; i < n; i++) assertEquals(desc[i], r.values()[i], 1e-13 * 3, "eigenvalue " + i);
        checkEigen(a, n, r, "prescribed spectrum");
    }

    @Test
    void identityZeroAndDiagonalInputs() {
        SymmetricEigen.Result id = SymmetricEigen.of(Dense.identity(6), 6);
        for (double x : id.values()) assertEquals(1, x, 1e-15);
        checkEigen(Dense.identity(6), 6, id, "identity");
        SymmetricEigen.Result z = SymmetricEigen.of(new double[16], 4);
        assertArrayEquals(new double[4], z.values(), 0);
        assertOrthonormal(z.vectors(), 4, 4, 0, "zero matrix eigenvectors");
        double[] diag = new double[25];
        double[] d = {-1, 4, 0, 2.5, 4};
        for (int i = 0; i < 5; i++) diag[i * 5 + i] = d[i];
        SymmetricEigen.Result dr = SymmetricEigen.of(diag, 5);
        assertArrayEquals(new double[] {4, 4, 2.5, 0, -1}, dr.values(), 1e-15);
        checkEigen(diag, 5, dr, "diagonal");
    }

    @Test
    void valuesOnlyMatchesAndOnlyTheLowerTriangleIsRead() {
        int n = 30;
        double[] a = symmetric(3, n);
        double[] full = SymmetricEigen.of(a, n).values();
        double[] only = SymmetricEigen.values(a, n);
        for (int i = 0; i < n; i++) assertEquals(full[i], only[i], 1e-13 * Math.abs(full[0]));
        double[] lower = a.clone();
        for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) lower[i * n + j] = 99;   // garbage above
        assertArrayEquals(full, SymmetricEigen.values(lower, n), 0);
        Tensor t = Dense.toTensor(a, n, n);
        assertArrayEquals(new int[] {n, n}, SymmetricEigen.of(t).vectorsTensor().shape());
        assertThrows(IllegalArgumentException.class, () -> SymmetricEigen.of(Tensor.zeros(3, 4)));
    }
}
