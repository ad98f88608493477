package io.peft4j.adapters;

import io.peft4j.linalg.Qr;
import io.peft4j.linalg.RandomizedSvd;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

/**
 * Initialisations that take the adapter out of W and rewrite the base to {@code W - s B A}, so the model's outputs
 * are unchanged at step 0 (as PEFT does):
 * <ul>
 *   <li>PiSSA: {@code W = U S V^T}; with {@code S_r' = S_r / s}: {@code A = sqrt(S_r') V_r^T} [r, in],
 *       {@code B = U_r sqrt(S_r')} [out, r]. {@code pissa_niter_N} uses a randomized SVD with N power iterations.</li>
 *   <li>OLoRA: thin QR {@code W = Q R}; {@code B = Q[:, :r]}, {@code A = R[:r, :]}.</li>
 * </ul>
 * The randomized SVD is seeded from the module name, so loading a saved adapter rewrites the base identically.
 */
final class WeightRewritingInit {
    private WeightRewritingInit() {}

    static boolean rewritesBase(String init) { return init.startsWith("pissa") || init.equals("olora"); }

    /** Returns {A [r, in], B [out, r]} and replaces the layer's weight by W - s B A. */
    static Tensor[] initialise(String kind, Linear lin, int r, float scaling) {
        Tensor w = lin.weight().copyToF32();   // [out, in]
        int out = w.dim(0), in = w.dim(1);
        Tensor a, b;
        if (kind.startsWith("pissa")) {
            Svd.Result svd = kind.equals("pissa")
                    ? Svd.truncated(w, r)
                    : RandomizedSvd.compute(w, r, Integer.parseInt(kind.substring("pissa_niter_".length())), lin.name().hashCode());
            double[] u = svd.u(), s = svd.s(), v = svd.v();   // u [out, k], s [k], v [in, k]
            int k = svd.k();
            float[] ad = new float[r * in], bd = new float[out * r];
            for (int j = 0; j < r; j++) {
                double root = Math.sqrt(s[j] / scaling);
                for (int i = 0; i < in; i++) ad[j * in + i] = (float) (root * v[i * k + j]);
                for (int o = 0; o < out; o++) bd[o * r + j] = (float) (u[o * k + j] * root);
            }
            a = Tensor.of(ad, r, in);
            b = Tensor.of(bd, out, r);
        } else if (kind.equals("olora")) {
            Qr.Result qr = Qr.thin(w);                        // q [out, k], r [k, in]
            int k = qr.k();
            double[] q = qr.q(), rr = qr.r();
            float[] ad = new float[r * in], bd = new float[out * r];
            for (int j = 0; j < r; j++) {
                for (int i = 0; i < in; i++) ad[j * in + i] = (float) rr[j * in + i];
                for (int o = 0; o < out; o++) bd[o * r + j] = (float) q[o * k + j];
            }
            a = Tensor.of(ad, r, in);
            b = Tensor.of(bd, out, r);
        } else {
            throw new IllegalArgumentException("not a weight-rewriting init: " + kind);
        }
        MethodContext.subtractProduct(lin, b, a, scaling);
        return new Tensor[] {a, b};
    }
}
