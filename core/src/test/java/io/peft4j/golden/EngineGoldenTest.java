package io.peft4j.golden;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.RopeTable;
import io.peft4j.autograd.Tape;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Compares {@link NnOps} forward outputs and input gradients with PyTorch, through the fixtures that
 * {@code tools/golden_engine.py} writes to {@code src/test/resources/golden/engine} (see its docstring for the
 * layout: {@code in.*}, {@code grad_out}, {@code out}, {@code grad.*}, settings in the metadata).
 *
 * <p>Tolerance: the fixtures are float64 results rounded once to F32, so the difference is peft4j's own F32 error.
 * With O(1) values and reductions over at most 37 terms that is a few ulps, ~1e-6; {@code |a - e| <= 1e-5 +
 * 1e-5 |e|} leaves ~10x headroom (the relative part covers the few entries of magnitude up to ~10, such as the loss)
 * while any real bug (a wrong head mapping, a missing scale, an off-by-one mask) moves values by 1e-2 or more.
 */
class EngineGoldenTest {
    static final double ATOL = 1e-5, RTOL = 1e-5;

    /** One fixture file: inputs copied to dense heap F32 (the ops' compute format), expectations read in place. */
    static final class Fixture implements AutoCloseable {
        final String name;
        final SafetensorsFile file;

        Fixture(String name) throws IOException, URISyntaxException {
            this.name = name;
            URL url = EngineGoldenTest.class.getResource("/golden/engine/" + name + ".safetensors");
            assertNotNull(url, "fixture golden/engine/" + name + ".safetensors missing: run /usr/bin/python3 tools/golden_engine.py");
            this.file = Safetensors.open(Path.of(url.toURI()));
        }

        /** A differentiable input: a fresh dense F32 leaf. */
        Tensor input(String key) { return file.get("in." + key).copyToF32().requiresGrad(true).name(key); }

        /** A constant input (mask), or null when the fixture has none. */
        Tensor constant(String key) { return file.contains("in." + key) ? file.get("in." + key).copyToF32() : null; }

        int[] ints(String key) {
            Tensor t = file.get("in." + key);
            int[] out = new int[Math.toIntExact(t.numel())];
            for (int i = 0; i < out.length; i++) out[i] = (int) t.getFlat(i);   // I64 values here are small indices
            return out;
        }

        String meta(String key) {
            String v = file.metadata().get(key);
            assertNotNull(v, name + ": metadata '" + key + "' missing");
            return v;
        }

        float metaFloat(String key) { return Float.parseFloat(meta(key)); }

        /**
         * Runs {@code op} on a recording tape, seeds the backward pass with {@code grad_out} (or 1 for a scalar loss),
         * and checks the output and the gradient of each named input.
         */
        void check(Function<Tensor[], Tensor> op, String... inputNames) {
            Tensor[] in = new Tensor[inputNames.length];
            for (int i = 0; i < in.length; i++) in[i] = input(inputNames[i]);
            try (Tape tape = Tape.record()) {
                Tensor out = op.apply(in);
                assertClose(name + " out", file.get("out"), out);
                if (file.contains("grad_out")) tape.backward(out, file.get("grad_out").copyToF32());
                else tape.backward(out);
            }
            for (int i = 0; i < in.length; i++) {
                assertNotNull(in[i].grad(), name + ": no gradient reached input " + inputNames[i]);
                assertClose(name + " grad." + inputNames[i], file.get("grad." + inputNames[i]), in[i].grad());
            }
        }

        @Override public void close() { file.close(); }
    }

    static void assertClose(String label, Tensor expected, Tensor actual) {
        assertArrayEquals(expected.shape(), actual.shape(), label + ": shape");
        float[] e = expected.toFloatArray(), a = actual.toFloatArray();
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < e.length; i++) {
            double err = Math.abs((double) a[i] - e[i]), allowed = ATOL + RTOL * Math.abs(e[i]);
            if (!(err <= allowed) && (worst < 0 || err - allowed > worstExcess)) { worst = i; worstExcess = err - allowed; }
        }
        if (worst >= 0)
            fail(String.format("%s %s: element %d is %.8g, PyTorch says %.8g (|diff| %.3g > %.3g)", label,
                    Arrays.toString(expected.shape()), worst, a[worst], e[worst], Math.abs((double) a[worst] - e[worst]),
                    ATOL + RTOL * Math.abs(e[worst])));
    }

    private static void attention(String fixture) throws Exception {
        try (Fixture f = new Fixture(fixture)) {
            Tensor mask = f.constant("mask");
            boolean causal = Boolean.parseBoolean(f.meta("causal"));
            int offset = Integer.parseInt(f.meta("query_offset"));
            float scale = f.metaFloat("scale");
            f.check(x -> NnOps.attention(x[0], x[1], x[2], causal, offset, mask, scale), "q", "k", "v");
        }
    }

    @Test void attentionGroupedQueryCausalWithAdditiveMask() throws Exception { attention("attention_gqa_causal_mask"); }

    @Test void attentionMultiQueryWithQueryOffset() throws Exception { attention("attention_mqa_offset"); }

    @Test void attentionBidirectionalWithBroadcastPaddingMask() throws Exception { attention("attention_bidirectional_padding"); }

    @Test
    void rmsNorm() throws Exception {
        try (Fixture f = new Fixture("rmsnorm")) {
            float eps = f.metaFloat("eps");
            f.check(x -> NnOps.rmsNorm(x[0], x[1], eps), "x", "weight");
        }
    }

    @Test
    void layerNorm() throws Exception {
        try (Fixture f = new Fixture("layernorm")) {
            float eps = f.metaFloat("eps");
            f.check(x -> NnOps.layerNorm(x[0], x[1], x[2], eps), "x", "weight", "bias");
        }
    }

    @Test
    void crossEntropyWithIgnoredTargets() throws Exception {
        try (Fixture f = new Fixture("cross_entropy")) {
            int[] targets = f.ints("targets");
            int ignore = Integer.parseInt(f.meta("ignore_index"));
            assertTrue(Arrays.stream(targets).anyMatch(t -> t == ignore), "the fixture exercises ignored targets");
            f.check(x -> NnOps.crossEntropy(x[0], targets, ignore), "logits");
        }
    }

    @Test
    void softmax() throws Exception {
        try (Fixture f = new Fixture("softmax")) { f.check(x -> NnOps.softmax(x[0]), "x"); }
    }

    @Test
    void logSoftmax() throws Exception {
        try (Fixture f = new Fixture("log_softmax")) { f.check(x -> NnOps.logSoftmax(x[0]), "x"); }
    }

    @Test
    void geluErf() throws Exception {
        try (Fixture f = new Fixture("gelu_erf")) { f.check(x -> NnOps.gelu(x[0], false), "x"); }
    }

    @Test
    void geluTanh() throws Exception {
        try (Fixture f = new Fixture("gelu_tanh")) { f.check(x -> NnOps.gelu(x[0], true), "x"); }
    }

    @Test
    void silu() throws Exception {
        try (Fixture f = new Fixture("silu")) { f.check(x -> NnOps.silu(x[0]), "x"); }
    }

    @Test
    void swiglu() throws Exception {
        try (Fixture f = new Fixture("swiglu")) { f.check(x -> NnOps.swiglu(x[0], x[1]), "gate", "up"); }
    }

    private static void rope(String fixture) throws Exception {
        try (Fixture f = new Fixture(fixture)) {
            RopeTable.Layout layout = RopeTable.Layout.valueOf(f.meta("layout"));
            double theta = Double.parseDouble(f.meta("theta"));
            int rotaryDim = Integer.parseInt(f.meta("rotary_dim"));
            int maxPositions = Integer.parseInt(f.meta("max_positions"));
            int headDim = f.file.get("in.x").dim(-1);
            double[] inv = new double[rotaryDim / 2];
            for (int i = 0; i < inv.length; i++) inv[i] = Math.pow(theta, -2.0 * i / rotaryDim);
            RopeTable table = new RopeTable(layout, headDim, rotaryDim, maxPositions, inv);
            int[] positions = f.ints("positions");
            f.check(x -> NnOps.rope(x[0], table, positions), "x");
        }
    }

    @Test void ropeRotateHalf() throws Exception { rope("rope_rotate_half"); }

    @Test void ropeRotateHalfPartialRotaryDim() throws Exception { rope("rope_rotate_half_partial"); }

    @Test void ropeInterleaved() throws Exception { rope("rope_interleaved"); }
}
