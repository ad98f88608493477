package io.peft4j.kernels;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The flash-attention kernels run with the Vector API kernels against the same loops on the scalar twin, forward
 * and backward, over random shapes that cross tile boundaries (T > BR, S > BC), GQA groups, causal offsets, masks
 * broadcast along every axis, and batch-strided operands. Agreement is to rounding (2e-5 relative to the largest
 * magnitude of each output); a tiling or indexing bug shows as O(1) differences.
 */
class AttentionKernelsTest {
    private static final NnKernels V = NnKernels.vector(), S = NnKernels.scalar();

    private static float[] rand(SplittableRandom r, int n, float lo, float hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        return a;
    }

    private static void close(String what, float[] e, float[] a) { close(what, e, a, 1e-6); }

    private static void close(String what, float[] e, float[] a, double floor) {
        if (e == null) return;
        double mag = floor;
        for (float x : e) if (Float.isFinite(x)) mag = Math.max(mag, Math.abs(x));
        for (int i = 0; i < e.length; i++)
            if (!(Math.abs(e[i] - a[i]) <= 2e-5 * mag) && !(e[i] == a[i]))
                fail(what + " element " + i + ": scalar " + e[i] + " vector " + a[i] + " (of " + e.length + ")");
    }

    @Test
    void vectorMatchesScalarOverRandomShapes() {
        SplittableRandom r = new SplittableRandom(7);
        for (int trial = 0; trial < 30; trial++) {
            int B = r.nextInt(1, 3), hkv = r.nextInt(1, 3), hq = hkv * r.nextInt(1, 4);
            int dh = r.nextInt(1, 4) == 1 ? r.nextInt(1, 9) : 8 * r.nextInt(1, 10) + r.nextInt(0, 3);
            int T = r.nextInt(1, 3) == 1 ? r.nextInt(1, 6) : r.nextInt(1, 80);
            boolean causal = r.nextBoolean();
            int off = causal ? r.nextInt(0, 70) : 0;
            int Sk = causal ? T + off + (r.nextBoolean() ? 0 : r.nextInt(1, 9)) : r.nextInt(1, 150);   // S >= offset + T
            int pad = r.nextInt(0, 3) * 7;   // batch stride beyond the dense size: a KV-cache slice
            int qsb = T * hq * dh, ksb = Sk * hkv * dh + pad;
            float[] q = rand(r, 1 + B * qsb, -1, 1), k = rand(r, 2 + B * ksb, -1, 1), v = rand(r, 3 + B * ksb, -1, 1);
            AttentionKernels.Mask mask = null;
            float[] dmS = null, dmV = null;
            if (r.nextBoolean()) {
                // mask of shape [mb, mh, T, S] with random broadcast axes, a few -inf entries
                int mb = r.nextBoolean() ? B : 1, mh = r.nextBoolean() ? hq : 1, mt = r.nextBoolean() ? T : 1, ms = r.nextBoolean() ? Sk : 1;
                float[] md = rand(r, mb * mh * mt * ms, -2, 2);
                for (int i = 0; i < md.length; i++) if (r.nextInt(10) == 0) md[i] = Float.NEGATIVE_INFINITY;
                int ss = ms == 1 ? 0 : 1, st = mt == 1 ? 0 : ms, sh = mh == 1 ? 0 : mt * ms, sb = mb == 1 ? 0 : mh * mt * ms;
                mask = new AttentionKernels.Mask(md, 0, sb, sh, st, ss);
                dmS = new float[md.length];
                dmV = new float[md.length];
            }
            AttentionKernels.Dims d = new AttentionKernels.Dims(B, T, Sk, hq, hkv, dh);
            AttentionKernels.Operand qo = new AttentionKernels.Operand(q, 1, qsb), ko = new AttentionKernels.Operand(k, 2, ksb),
                    vo = new AttentionKernels.Operand(v, 3, ksb);
            float scale = (float) (1 / Math.sqrt(dh));
            String label = "trial " + trial + " B" + B + " T" + T + " S" + Sk + " Hq" + hq + " Hkv" + hkv + " Dh" + dh + " causal " + causal + " off " + off + " mask " + (mask != null);
            float[] oS = new float[B * T * hq * dh], oV = oS.clone(), lS = new float[B * hq * T], lV = lS.clone();
            AttentionKernels.forward(S, d, qo, ko, vo, mask, causal, off, scale, oS, lS);
            AttentionKernels.forward(V, d, qo, ko, vo, mask, causal, off, scale, oV, lV);
            close(label + " out", oS, oV);
            close(label + " lse", lS, lV);
            for (float x : oS) if (Float.isNaN(x)) fail(label + ": NaN in output");
            float[] dOut = rand(r, oS.length, -1, 1);
            float[] dqS = new float[B * qsb], dqV = dqS.clone(), dkS = new float[B * Sk * hkv * dh], dkV = dkS.clone(), dvS = dkS.clone(), dvV = dkS.clone();
            AttentionKernels.backward(S, d, qo, ko, vo, mask, causal, off, scale, oS, lS, dOut, dqS, dkS, dvS, dmS);
            AttentionKernels.backward(V, d, qo, ko, vo, mask, causal, off, scale, oS, lS, dOut, dqV, dkV, dvV, dmV);
            close(label + " dq", dqS, dqV);
            close(label + " dk", dkS, dkV);
            close(label + " dv", dvS, dvV);
            // a broadcast mask's gradient sums rows of dScores, each of which sums to 0: an absolute floor
            close(label + " dmask", dmS, dmV, 0.05);
            for (float[] g : new float[][] {dqS, dkS, dvS}) for (float x : g) if (Float.isNaN(x)) fail(label + ": NaN in a gradient");
            // the batch-strided operand must give exactly what its dense copy gives
            if (pad > 0) {
                float[] kd = new float[B * Sk * hkv * dh], vd = kd.clone();
                for (int b = 0; b < B; b++) {
                    System.arraycopy(k, 2 + b * ksb, kd, b * Sk * hkv * dh, Sk * hkv * dh);
                    System.arraycopy(v, 3 + b * ksb, vd, b * Sk * hkv * dh, Sk * hkv * dh);
                }
                float[] oD = new float[oS.length];
                AttentionKernels.forward(V, d, qo, new AttentionKernels.Operand(kd, 0, Sk * hkv * dh), new AttentionKernels.Operand(vd, 0, Sk * hkv * dh),
                        mask, causal, off, scale, oD, new float[lS.length]);
                if (!Arrays.equals(oV, oD)) fail(label + ": strided operand differs from its dense copy");
            }
        }
    }
}
