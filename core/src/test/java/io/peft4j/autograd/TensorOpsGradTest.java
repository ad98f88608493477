package io.peft4j.autograd;

import io.peft4j.testing.GradCheck;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.function.Supplier;

import static io.peft4j.autograd.TensorOps.*;

/**
 * Finite-difference gradient checks of every TensorOps op, one table row per op and situation: odd sizes,
 * broadcasting on either side, size-1 and rank-0 operands, transposed-view inputs, keepDims both ways, frozen
 * operands. A second test draws random broadcast shapes and reduction axes.
 */
class TensorOpsGradTest {

    record Case(String name, Function<Tensor[], Tensor> f, Supplier<Tensor[]> inputs) {
        @Override public String toString() { return name; }
    }

    /** Standard-normal input that requires gradients. */
    static Tensor n(long seed, int... shape) { return Tensor.randn(seed, 1f, shape).requiresGrad(true); }

    /** Same, frozen. */
    static Tensor frozen(long seed, int... shape) { return Tensor.randn(seed, 1f, shape); }

    /** Positive input in [0.5, 2) (log, sqrt, fractional powers). */
    static Tensor pos(long seed, int... shape) { return Tensor.uniform(seed, 0.5f, 2f, shape).requiresGrad(true); }

    /** Input of either sign with magnitude in [0.5, 1.5) (divisors). */
    static Tensor away(long seed, int... shape) {
        Tensor t = Tensor.uniform(seed, 0.5f, 1.5f, shape);
        float[] d = t.data();
        SplittableRandom r = new SplittableRandom(seed + 1);
        for (int i = 0; i < d.length; i++) if (r.nextBoolean()) d[i] = -d[i];
        return t.requiresGrad(true);
    }

    static Case c(String name, Function<Tensor[], Tensor> f, Supplier<Tensor[]> inputs) { return new Case(name, f, inputs); }

    static Tensor[] in(Tensor... t) { return t; }

    static List<Case> cases() {
        List<Case> t = new ArrayList<>();
        // ---- products
        t.add(c("matmul [3,5]x[5,4]", x -> matmul(x[0], x[1]), () -> in(n(1, 3, 5), n(2, 5, 4))));
        t.add(c("matmul A^T view", x -> matmul(transpose(x[0], 0, 1), x[1]), () -> in(n(3, 5, 3), n(4, 5, 4))));
        t.add(c("matmul B^T view", x -> matmul(x[0], transpose(x[1], 0, 1)), () -> in(n(5, 3, 5), n(6, 7, 5))));
        t.add(c("matmul both transposed, size-1 dim", x -> matmul(transpose(x[0], 0, 1), transpose(x[1], 1, 0)), () -> in(n(7, 5, 1), n(8, 7, 5))));
        t.add(c("matmul frozen B", x -> matmul(x[0], x[1]), () -> in(n(9, 2, 3), frozen(10, 3, 3))));
        t.add(c("bmm [2,3,4]x[2,4,5]", x -> bmm(x[0], x[1]), () -> in(n(11, 2, 3, 4), n(12, 2, 4, 5))));
        t.add(c("bmm batch broadcast [2,1,3,4]x[3,4,2]", x -> bmm(x[0], x[1]), () -> in(n(13, 2, 1, 3, 4), n(14, 3, 4, 2))));
        t.add(c("bmm rank-2 b shared by batches", x -> bmm(x[0], x[1]), () -> in(n(15, 3, 2, 4), n(16, 4, 5))));
        t.add(c("bmm transposed views", x -> bmm(transpose(x[0], -1, -2), permute(x[1], 2, 0, 1)), () -> in(n(17, 2, 4, 3), n(18, 4, 5, 2))));
        t.add(c("linear x[2,3,5] W[4,5] bias[4]", x -> linear(x[0], x[1], x[2]), () -> in(n(19, 2, 3, 5), n(20, 4, 5), n(21, 4))));
        t.add(c("linear rank-1 x, no bias", x -> linear(x[0], x[1], null), () -> in(n(22, 5), n(23, 3, 5))));
        t.add(c("linear frozen W", x -> linear(x[0], x[1], x[2]), () -> in(n(24, 3, 6), frozen(25, 7, 6), n(26, 7))));
        t.add(c("linear transposed-view x", x -> linear(transpose(x[0], 0, 1), x[1], x[2]), () -> in(n(27, 5, 3), n(28, 2, 5), n(29, 2))));
        t.add(c("linear W as transposed view", x -> linear(x[0], transpose(x[1], 0, 1), null), () -> in(n(30, 3, 4), n(31, 4, 5))));
        // ---- broadcasting arithmetic
        t.add(c("add same shape", x -> add(x[0], x[1]), () -> in(n(40, 3, 7), n(41, 3, 7))));
        t.add(c("add broadcast both sides", x -> add(x[0], x[1]), () -> in(n(42, 3, 1, 5), n(43, 4, 1))));
        t.add(c("add rank-0 + matrix", x -> add(x[0], x[1]), () -> in(n(44), n(45, 2, 3))));
        t.add(c("add transposed view", x -> add(transpose(x[0], 0, 1), x[1]), () -> in(n(46, 4, 3), n(47, 3, 1))));
        t.add(c("sub broadcast both sides", x -> sub(x[0], x[1]), () -> in(n(48, 1, 6), n(49, 5, 1))));
        t.add(c("sub matrix - row", x -> sub(x[0], x[1]), () -> in(n(50, 3, 5), n(51, 5))));
        t.add(c("mul same shape", x -> mul(x[0], x[1]), () -> in(n(52, 2, 3, 3), n(53, 2, 3, 3))));
        t.add(c("mul broadcast both sides", x -> mul(x[0], x[1]), () -> in(n(54, 2, 1, 3), n(55, 4, 1))));
        t.add(c("mul by itself", x -> mul(x[0], x[0]), () -> in(n(56, 3, 4))));
        t.add(c("mul transposed view x frozen", x -> mul(transpose(x[0], 0, 1), x[1]), () -> in(n(57, 5, 3), frozen(58, 3, 5))));
        t.add(c("div same shape", x -> div(x[0], x[1]), () -> in(n(59, 4, 3), away(60, 4, 3))));
        t.add(c("div broadcast both sides", x -> div(x[0], x[1]), () -> in(n(61, 3, 1), away(62, 1, 4))));
        t.add(c("div scalar / matrix", x -> div(x[0], x[1]), () -> in(n(63), away(64, 2, 5))));
        // ---- unary
        t.add(c("scale", x -> scale(x[0], 1.7f), () -> in(n(70, 3, 5))));
        t.add(c("neg of transposed view", x -> neg(transpose(x[0], 0, 1)), () -> in(n(71, 3, 4))));
        t.add(c("addScalar", x -> addScalar(x[0], -0.3f), () -> in(n(72, 7))));
        t.add(c("exp", x -> exp(x[0]), () -> in(n(73, 3, 5))));
        t.add(c("exp of transposed view", x -> exp(transpose(x[0], 1, 0)), () -> in(n(74, 4, 3))));
        t.add(c("log", x -> log(x[0]), () -> in(pos(75, 4, 5))));
        t.add(c("sqrt", x -> sqrt(x[0]), () -> in(pos(76, 6, 3))));
        t.add(c("pow 2", x -> pow(x[0], 2f), () -> in(n(77, 3, 5))));
        t.add(c("pow 3 (negative bases)", x -> pow(x[0], 3f), () -> in(n(78, 17))));
        t.add(c("pow -0.5", x -> pow(x[0], -0.5f), () -> in(pos(79, 3, 3))));
        t.add(c("pow 0", x -> pow(x[0], 0f), () -> in(n(80, 5))));
        // ---- reductions
        t.add(c("sum all", x -> sum(x[0], false), () -> in(n(90, 3, 4, 5))));
        t.add(c("sum all keepDims", x -> sum(x[0], true), () -> in(n(91, 3, 4, 5))));
        t.add(c("sum axis 1", x -> sum(x[0], false, 1), () -> in(n(92, 3, 4, 5))));
        t.add(c("sum axis 1 keepDims", x -> sum(x[0], true, 1), () -> in(n(93, 3, 4, 5))));
        t.add(c("sum axes 0,2", x -> sum(x[0], false, 0, 2), () -> in(n(94, 3, 4, 5))));
        t.add(c("sum axis -1 of transposed view", x -> sum(transpose(x[0], 0, 1), true, -1), () -> in(n(95, 5, 3))));
        t.add(c("sum over size-1 axis", x -> sum(x[0], false, 1), () -> in(n(96, 3, 1, 4))));
        t.add(c("mean all", x -> mean(x[0], false), () -> in(n(97, 3, 7))));
        t.add(c("mean axes 0,2 keepDims", x -> mean(x[0], true, 0, 2), () -> in(n(98, 2, 3, 5))));
        t.add(c("mean axis -1", x -> mean(x[0], false, -1), () -> in(n(99, 4, 9))));
        // ---- shape
        t.add(c("reshape contiguous", x -> reshape(x[0], 12, -1), () -> in(n(100, 3, 4, 5))));
        t.add(c("reshape of transposed view (copies)", x -> reshape(transpose(x[0], 0, 1), -1), () -> in(n(101, 3, 4))));
        t.add(c("transpose 0,2", x -> transpose(x[0], 0, 2), () -> in(n(102, 2, 3, 4))));
        t.add(c("permute 2,0,1", x -> permute(x[0], 2, 0, 1), () -> in(n(103, 2, 3, 5))));
        t.add(c("slice dim 1", x -> slice(x[0], 1, 1, 4), () -> in(n(104, 3, 5, 2))));
        t.add(c("slice last dim", x -> slice(x[0], -1, 2, 5), () -> in(n(105, 3, 7))));
        t.add(c("slice of transposed view", x -> slice(transpose(x[0], 0, 1), 0, 1, 3), () -> in(n(106, 4, 3))));
        t.add(c("concat dim 0", x -> concat(List.of(x[0], x[1], x[2]), 0), () -> in(n(107, 1, 3), n(108, 2, 3), n(109, 3, 3))));
        t.add(c("concat dim 1", x -> concat(List.of(x[0], x[1]), 1), () -> in(n(110, 2, 3, 4), n(111, 2, 1, 4))));
        t.add(c("concat last dim, frozen and transposed parts", x -> concat(List.of(x[0], x[1], transpose(x[2], 0, 1)), -1),
                () -> in(n(112, 3, 2), frozen(113, 3, 1), n(114, 4, 3))));
        t.add(c("embedding with repeated ids", x -> embedding(x[0], new int[] {1, 3, 1, 5, 0, 1}), () -> in(n(115, 6, 4))));
        // ---- a chain through several ops
        t.add(c("chain: mean((linear(x) * exp(x W)) - b)", x -> mean(sub(mul(linear(x[0], x[1], x[2]), exp(matmul(x[0], transpose(x[1], 0, 1)))), x[2]), true, 0),
                () -> in(n(120, 3, 4), n(121, 2, 4), n(122, 2))));
        return t;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradientMatchesFiniteDifferences(Case c) {
        GradCheck.defaults().check(c.name(), c.f(), c.inputs().get());
    }

    /** Random broadcast shape pairs (size-1 dims and missing leading dims on either side) for the four ops. */
    @Test
    void randomBroadcastShapes() {
        SplittableRandom r = new SplittableRandom(2024);
        for (int trial = 0; trial < 24; trial++) {
            int rank = r.nextInt(1, 4);
            int[] full = new int[rank];
            for (int i = 0; i < rank; i++) full[i] = r.nextInt(1, 6);
            int[] a = randomBroadcastOf(r, full), b = randomBroadcastOf(r, full);
            long seed = 1000 + trial;
            String shapes = Arrays.toString(a) + " op " + Arrays.toString(b);
            GradCheck g = GradCheck.defaults();
            g.check("add " + shapes, x -> add(x[0], x[1]), n(seed, a), n(seed + 1, b));
            g.check("sub " + shapes, x -> sub(x[0], x[1]), n(seed, a), n(seed + 1, b));
            g.check("mul " + shapes, x -> mul(x[0], x[1]), n(seed, a), n(seed + 1, b));
            g.check("div " + shapes, x -> div(x[0], x[1]), n(seed, a), away(seed + 1, b));
        }
    }

    /** Random reduction axes (any subset, negative spellings) with keepDims both ways. */
    @Test
    void randomReductionAxes() {
        SplittableRandom r = new SplittableRandom(77);
        for (int trial = 0; trial < 16; trial++) {
            int rank = r.nextInt(1, 5);
            int[] shape = new int[rank];
            for (int i = 0; i < rank; i++) shape[i] = r.nextInt(1, 5);
            List<Integer> axes = new ArrayList<>();
            for (int i = 0; i < rank; i++) if (r.nextBoolean()) axes.add(r.nextBoolean() ? i : i - rank);
            int[] ax = axes.stream().mapToInt(Integer::intValue).toArray();
            boolean keep = r.nextBoolean();
            String label = Arrays.toString(shape) + " axes " + Arrays.toString(ax) + " keepDims " + keep;
            GradCheck.defaults().check("sum " + label, x -> sum(x[0], keep, ax), n(500 + trial, shape));
            GradCheck.defaults().check("mean " + label, x -> mean(x[0], keep, ax), n(600 + trial, shape));
        }
    }

    private static int[] randomBroadcastOf(SplittableRandom r, int[] full) {
        int drop = r.nextInt(0, full.length);  // missing leading dims
        int[] s = Arrays.copyOfRange(full, drop, full.length);
        for (int i = 0; i < s.length; i++) if (r.nextInt(3) == 0) s[i] = 1;
        return s;
    }
}
