package io.peft4j.linalg;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Compares against LAPACK through PyTorch ({@code tools/golden_linalg.py} wrote the fixture in float64). The QR
 * cases pin the sign convention: our Q and R must equal {@code torch.linalg.qr}'s entry for entry, not merely up to
 * column signs.
 */
class LinalgGoldenTest {
    record Case(String name, String op, int m, int n, Map<String, double[]> values) {
        double[] get(String key) {
            double[] v = values.get(key);
            if (v == null) throw new AssertionError("fixture case " + name + " has no key " + key);
            return v;
        }
    }

    static List<Case> load() throws IOException {
        String path = "/golden/linalg/reference.txt";
        InputStream in = LinalgGoldenTest.class.getResourceAsStream(path);
        assertNotNull(in, "missing test resource " + path + " (run /usr/bin/python3 tools/golden_linalg.py)");
        List<Case> cases = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            Case cur = null;
            for (String line; (line = r.readLine()) != null; ) {
                String[] tok = line.trim().split("\\s+");
                if (tok[0].equals("case")) {
                    cur = new Case(tok[1], tok[2], Integer.parseInt(tok[3]), Integer.parseInt(tok[4]), new LinkedHashMap<>());
                    cases.add(cur);
                } else if (cur != null && !tok[0].isEmpty()) {
                    double[] v = new double[tok.length - 1];
                    for (int i = 1; i < tok.length; i++) v[i - 1] = Double.parseDouble(tok[i]);
                    cur.values.put(tok[0], v);
                }
            }
        }
        assertFalse(cases.isEmpty(), path + " holds no cases");
        return cases;
    }

    static void assertClose(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++)
            if (Math.abs(expected[i] - actual[i]) > tol)
                fail(what + ": element " + i + " is " + actual[i] + ", LAPACK has " + expected[i] + " (tol " + tol + ")");
    }

    @Test
    void qrMatchesLapackIncludingSigns() throws IOException {
        int seen = 0;
        for (Case c : load()) {
            if (!c.op.equals("qr")) continue;
            seen++;
            Qr.Result qr = Qr.thin(c.get("A"), c.m, c.n);
            assertClose(c.get("Q"), qr.q(), 1e-12, c.name + " Q");
            assertClose(c.get("R"), qr.r(), 1e-12, c.name + " R");
        }
        assertTrue(seen >= 5, "expected the qr cases in the fixture, saw " + seen);
    }

    @Test
    void luMatchesLapackPivotsAndFactors() throws IOException {
        int seen = 0;
        for (Case c : load()) {
            if (!c.op.equals("lu")) continue;
            seen++;
            int m = c.m, n = c.n, k = Math.min(m, n);
            double[] packed = c.get("LU"), piv = c.get("PIV");
            int[] perm = new int[m];
            for (int i = 0; i < m; i++) perm[i] = i;
            for (int j = 0; j < piv.length; j++) {   // LAPACK: row j was swapped with row piv[j], in order
                int p = (int) piv[j], t = perm[j];
                perm[j] = perm[p];
                perm[p] = t;
            }
            Lu.Result lu = Lu.of(c.get("A"), m, n);
            assertArrayEquals(perm, lu.perm(), c.name + " row order");
            double[] l = new double[m * k], u = new double[k * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double x = packed[i * n + j];
                    if (j < i && j < k) l[i * k + j] = x;
                    else if (i < k && j >= i) u[i * n + j] = x;
                }
            for (int i = 0; i < k; i++) l[i * k + i] = 1;
            assertClose(l, lu.l(), 1e-12, c.name + " L");
            assertClose(u, lu.u(), 1e-12, c.name + " U");
        }
        assertEquals(3, seen, "lu cases in the fixture");
    }

    @Test
    void singularAndEigenValuesMatchLapack() throws IOException {
        int seen = 0;
        for (Case c : load()) {
            switch (c.op) {
                case "svdvals" -> {
                    seen++;
                    double[] s = c.get("S");
                    assertClose(s, Svd.thin(c.get("A"), c.m, c.n).s(), 1e-12 * s[0], c.name + " S");
                    assertClose(s, Svd.values(c.get("A"), c.m, c.n), 1e-12 * s[0], c.name + " S (values only)");
                }
                case "eigvalsh" -> {
                    seen++;
                    double[] w = c.get("W");   // ascending in torch, descending here
                    double[] mine = SymmetricEigen.of(c.get("A"), c.m).values();
                    double[] rev = new double[w.length];
                    for (int i = 0; i < w.length; i++) rev[i] = w[w.length - 1 - i];
                    assertClose(rev, mine, 1e-12 * Dense.maxAbs(w), c.name + " W");
                }
                default -> { }
            }
        }
        assertEquals(3, seen, "svdvals + eigvalsh cases in the fixture");
    }
}
