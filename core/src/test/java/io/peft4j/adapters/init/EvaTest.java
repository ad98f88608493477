package io.peft4j.adapters.init;

import io.peft4j.linalg.Svd;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * EVA's math without a model: the streaming SVD against a one-shot SVD of the same rows (exact when it holds every
 * direction, accurate in the top components when truncated), and the explained-variance rank redistribution.
 * Model-level properties (A rows vs. collected activations, convergence, save/load, export, counts) are in
 * {@code io.peft4j.adapters.EvaToyTest}.
 */
class EvaTest {

    /** Rows [n, d] with column scales decaying geometrically (a clear spectrum), rotated by a random orthogonal basis. */
    static float[] decayingRows(long seed, int n, int d, double decay, double offset) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] g = new double[d * d];
        for (int i = 0; i < g.length; i++) g[i] = rng.nextGaussian();
        double[] q = Svd.thin(g, d, d).u();               // a random orthogonal [d, d]
        float[] x = new float[n * d];
        double[] z = new double[d];                       // one row's latent coordinates, std decay^c
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < d; c++) z[c] = rng.nextGaussian() * Math.pow(decay, c);
            for (int j = 0; j < d; j++) {
                double v = offset;
                for (int c = 0; c < d; c++) v += z[c] * q[j * d + c];
                x[i * d + j] = (float) v;
            }
        }
        return x;
    }

    static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) d[i] = x[i];
        return d;
    }

    /** Feeds the rows in uneven pieces, as calibration batches of different lengths would. */
    static IncrementalSvd stream(float[] x, int n, int d, int keep, boolean center, int... pieces) {
        IncrementalSvd svd = new IncrementalSvd(d, keep, center);
        int at = 0, p = 0;
        while (at < n) {
            int len = Math.min(n - at, pieces[p++ % pieces.length]);
            svd.update(Arrays.copyOfRange(x, at * d, (at + len) * d), len);
            at += len;
        }
        return svd;
    }

    static double absCos(double[] a, double[] b, int bOffset) {
        double d = 0, na = 0, nb = 0;
        for (int j = 0; j < a.length; j++) { d += a[j] * b[bOffset + j]; na += a[j] * a[j]; nb += b[bOffset + j] * b[bOffset + j]; }
        return Math.abs(d) / Math.sqrt(na * nb);
    }

    @Test
    void holdingEveryDirectionItIsTheExactSvdOfAllRows() {
        int n = 157, d = 9;
        float[] x = decayingRows(3, n, d, 0.8, 0.3);
        IncrementalSvd svd = stream(x, n, d, d, false, 23, 5, 40, 1, 17);
        assertTrue(svd.columnSpaceSteps > 0, "narrow rows: column-space steps");
        Svd.Result ref = Svd.thin(toDouble(x), n, d);
        double[] vt = ref.vt();
        assertEquals(n, svd.rowsSeen());
        double total = 0;
        for (float v : x) total += (double) v * v;
        for (int i = 0; i < d; i++) {
            assertEquals(ref.s()[i], svd.singularValue(i), 1e-9 * ref.s()[0], "singular value " + i);
            assertEquals(1.0, absCos(svd.component(i), vt, i * d), 1e-9, "component " + i + " up to sign");
            assertEquals(ref.s()[i] * ref.s()[i] / total, svd.explainedVarianceRatio(i), 1e-9, "explained variance ratio " + i);
        }
    }

    @Test
    void centredItIsTheSvdOfTheMeanCentredRows() {
        int n = 120, d = 8;
        float[] x = decayingRows(5, n, d, 0.7, 2.5);       // a large mean that the uncentred SVD would pick up first
        IncrementalSvd svd = stream(x, n, d, d, true, 31, 7, 50);
        double[] c = toDouble(x), mean = new double[d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) mean[j] += c[i * d + j] / n;
        double total = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) { c[i * d + j] -= mean[j]; total += c[i * d + j] * c[i * d + j]; }
        Svd.Result ref = Svd.thin(c, n, d);
        double[] vt = ref.vt();
        for (int i = 0; i < d - 1; i++) {
            assertEquals(ref.s()[i], svd.singularValue(i), 1e-8 * ref.s()[0], "singular value " + i);
            assertEquals(1.0, absCos(svd.component(i), vt, i * d), 1e-8, "component " + i);
            assertEquals(ref.s()[i] * ref.s()[i] / total, svd.explainedVarianceRatio(i), 1e-9, "ratio " + i);
            assertEquals(ref.s()[i] * ref.s()[i] / (n - 1), svd.variance(i), 1e-8 * ref.s()[0] * ref.s()[0] / n, "variance " + i);
        }
        Svd.Result raw = Svd.thin(toDouble(x), n, d);
        assertTrue(absCos(svd.component(0), raw.vt(), 0) < 0.99, "centring changes the top direction here (the mean dominates the raw rows)");
    }

    @Test
    void truncatedItKeepsTheTopComponentsAccurately() {
        int n = 600, d = 40, keep = 12, used = 6;
        float[] x = decayingRows(9, n, d, 0.75, 0);
        IncrementalSvd svd = stream(x, n, d, keep, false, 64, 64, 13);
        Svd.Result ref = Svd.thin(toDouble(x), n, d);
        double[] vt = ref.vt();
        for (int i = 0; i < used; i++) {
            assertEquals(ref.s()[i], svd.singularValue(i), 1e-5 * ref.s()[i], "singular value " + i);
            assertEquals(1.0, absCos(svd.component(i), vt, i * d), 1e-8, "component " + i);
        }
        double[] top = svd.top(keep);
        for (int i = 0; i < keep; i++)
            for (int j = 0; j < keep; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += top[i * d + c] * top[j * d + c];
                assertEquals(i == j ? 1 : 0, dot, 1e-12, "orthonormal rows " + i + ", " + j);
            }
    }

    /** Rows [n, d] that lie in a random {@code rank}-dimensional subspace, with decaying scales inside it. */
    static float[] lowRankRows(long seed, int n, int d, int rank) { return lowRankRows(seed, n, d, rank, 0.7); }

    static float[] lowRankRows(long seed, int n, int d, int rank, double decay) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] basis = new double[rank * d];
        for (int i = 0; i < basis.length; i++) basis[i] = rng.nextGaussian();
        float[] x = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < rank; c++) {
                double z = rng.nextGaussian() * Math.pow(decay, c);
                for (int j = 0; j < d; j++) x[i * d + j] += (float) (z * basis[c * d + j]);
            }
        return x;
    }

    @Test
    void wideLayersUseRowSpaceStepsAndStayExactWhileTheDataFitsTheKeptComponents() {
        int n = 400, d = 200, keep = 8;
        float[] x = lowRankRows(12, n, d, 6);               // rank 6 <= keep: nothing is ever truncated away
        IncrementalSvd svd = stream(x, n, d, keep, false, 100, 37, 150);
        assertTrue(svd.rowSpaceSteps > 0 && svd.columnSpaceSteps == 0, svd.rowSpaceSteps + " row / " + svd.columnSpaceSteps + " column steps");
        Svd.Result ref = Svd.thin(toDouble(x), n, d);
        double[] vt = ref.vt();
        assertEquals(6, svd.components(), "directions without energy are dropped, not kept as noise");
        for (int i = 0; i < 6; i++) {
            assertEquals(ref.s()[i], svd.singularValue(i), 1e-9 * ref.s()[0], "singular value " + i);
            assertEquals(1.0, absCos(svd.component(i), vt, i * d), 1e-9, "component " + i);
        }
        double[] top = svd.top(keep);                       // completed to keep rows, still orthonormal
        for (int i = 0; i < keep; i++)
            for (int j = 0; j < keep; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += top[i * d + c] * top[j * d + c];
                assertEquals(i == j ? 1 : 0, dot, 1e-12, "orthonormal rows " + i + ", " + j);
            }

        float[] y = decayingRows(13, n, d / 4, 0.6, 0);     // full rank, truncated: the top components stay accurate
        IncrementalSvd t = stream(y, n, d / 4, keep, false, 100);
        assertTrue(t.rowSpaceSteps > 0, "row-space steps on a truncated stream");
        Svd.Result r2 = Svd.thin(toDouble(y), n, d / 4);
        for (int i = 0; i < 3; i++) assertEquals(1.0, absCos(t.component(i), r2.vt(), i * (d / 4)), 1e-8, "truncated component " + i);
    }

    @Test
    void illConditionedRowsStillGiveAnOrthonormalBasis() {
        // scales 1 .. 1e-5: the smallest kept component has 1e-10 of the energy, where M^T u / sigma alone loses
        // orthogonality (~1e-6); the re-orthonormalisation must keep the state an orthonormal basis
        int n = 300, d = 120, keep = 8;
        float[] x = lowRankRows(14, n, d, 6, 0.1);
        IncrementalSvd svd = stream(x, n, d, keep, false, 60);
        assertTrue(svd.rowSpaceSteps > 0);
        assertEquals(6, svd.components());
        double[] top = svd.top(keep);
        for (int i = 0; i < keep; i++)
            for (int j = 0; j < keep; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += top[i * d + c] * top[j * d + c];
                assertEquals(i == j ? 1 : 0, dot, 1e-12, "orthonormal rows " + i + ", " + j);
            }
        Svd.Result ref = Svd.thin(toDouble(x), n, d);
        for (int i = 0; i < 3; i++) assertEquals(1.0, absCos(svd.component(i), ref.vt(), i * d), 1e-9, "component " + i);
    }

    @Test
    void fewerRowsThanComponentsAreCompletedOrthonormallyWithoutVariance() {
        int d = 10;
        float[] x = decayingRows(2, 3, d, 0.9, 0);
        IncrementalSvd svd = stream(x, 3, d, d, false, 3);
        assertEquals(3, svd.components());
        double[] top = svd.top(6);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += top[i * d + c] * top[j * d + c];
                assertEquals(i == j ? 1 : 0, dot, 1e-12, "rows " + i + ", " + j);
            }
        assertEquals(0, svd.explainedVarianceRatio(4));
        double sum = 0;
        for (int i = 0; i < 3; i++) sum += svd.explainedVarianceRatio(i);
        assertEquals(1, sum, 1e-9, "three rows: three components explain everything");
    }

    @Test
    void similarityIsOneForIdenticalBatchesAndDetectsAChange() {
        int n = 50, d = 7;
        float[] x = decayingRows(4, n, d, 0.6, 0);
        IncrementalSvd svd = new IncrementalSvd(d, d, false);
        svd.update(x, n);
        double[] before = svd.snapshot();
        svd.update(x, n);                                   // the same rows again: the same directions
        double[] sim = svd.similarity(before, d, 4);
        for (int i = 0; i < 4; i++) assertEquals(1, sim[i], 1e-9, "component " + i);
        float[] y = decayingRows(77, n, d, 0.6, 0);         // a differently rotated distribution
        before = svd.snapshot();
        svd.update(y, n);
        double[] moved = svd.similarity(before, d, 4);
        assertTrue(Arrays.stream(moved).min().getAsDouble() < 0.99, Arrays.toString(moved));
    }

    @Test
    void ranksFollowExplainedVarianceUnderTheBudgetAndCaps() {
        double[][] ratios = {
                {0.50, 0.30, 0.10, 0.05},       // a steep module: wants ranks
                {0.20, 0.19, 0.18, 0.17},       // a flat module
                {0.90, 0.01, 0.01, 0.01},       // nearly rank one
        };
        int[] caps = {4, 4, 4};
        // budget 6: floor 1 each, then the 3 largest of {0.30, 0.10, 0.05, 0.19, 0.18, 0.17, 0.01 x3}
        assertArrayEquals(new int[] {2, 3, 1}, Eva.distribute(ratios, caps, 6));
        // budget 9: + the next three of the same list: 0.17, 0.10, 0.05
        assertArrayEquals(new int[] {4, 4, 1}, Eva.distribute(ratios, caps, 9));
        // caps bind: module 0 may take only 2
        assertArrayEquals(new int[] {2, 4, 3}, Eva.distribute(ratios, new int[] {2, 4, 4}, 9));
        // rho = 1 (caps = r): the budget equals the sum of caps, every module gets its cap
        assertArrayEquals(new int[] {3, 3, 3}, Eva.distribute(ratios, new int[] {3, 3, 3}, 9));
        assertThrows(IllegalArgumentException.class, () -> Eva.distribute(ratios, caps, 2), "budget below one rank per module");
        assertThrows(IllegalArgumentException.class, () -> Eva.distribute(ratios, caps, 13), "budget above the caps");
    }

    @Test
    void randomRedistributionsSumToTheBudgetRespectCapsAndTakeTheLargestRatios() {
        SplittableRandom rng = new SplittableRandom(17);
        for (int trial = 0; trial < 300; trial++) {
            int n = 1 + rng.nextInt(7);
            int r = 1 + rng.nextInt(5);
            int[] caps = new int[n];
            double[][] ratios = new double[n][];
            for (int m = 0; m < n; m++) {
                caps[m] = r + rng.nextInt(r + 1);
                ratios[m] = new double[caps[m]];
                double v = rng.nextDouble();
                for (int i = 0; i < caps[m]; i++) { ratios[m][i] = v; v *= rng.nextDouble(); }
            }
            int budget = r * n;
            int[] ranks = Eva.distribute(ratios, caps, budget);
            int sum = 0;
            double smallestTaken = Double.POSITIVE_INFINITY, largestLeft = 0;
            for (int m = 0; m < n; m++) {
                assertTrue(ranks[m] >= 1 && ranks[m] <= caps[m], "trial " + trial + ": rank " + ranks[m] + " outside [1, " + caps[m] + "]");
                sum += ranks[m];
                for (int i = 1; i < caps[m]; i++) {
                    if (i < ranks[m]) smallestTaken = Math.min(smallestTaken, ratios[m][i]);
                    else largestLeft = Math.max(largestLeft, ratios[m][i]);
                }
            }
            assertEquals(budget, sum, "trial " + trial);
            assertTrue(smallestTaken >= largestLeft, "trial " + trial + ": a left-out component explains more than a chosen one");
        }
    }
}
