package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One DiffuseKronA adapter ({@link DiffuseKronA}) on one {@link Linear}: {@code y = W x + b + s · (A ⊗ B) x} with
 * A [a1, a2] and B [p, q], {@code p = out / a1}, {@code q = in / a2}.
 *
 * <p>The Kronecker product is never formed while training. With row-major layouts, {@code (A ⊗ B)[i·p + k, j·q + l]
 * = A[i, j] · B[k, l]}; reading a token's input x [in] as X [a2, q] ({@code X[j, l] = x[j·q + l]}) gives
 * {@code y[i·p + k] = Σ_j Σ_l A[i, j] X[j, l] B[k, l]}, i.e. {@code Y = A X B^T} [a1, p] read row-major as y [out]
 * (the column-major statement of the same identity is {@code vec(B X A^T)}). It is computed with gradient-checked ops
 * (a linear and a broadcast batched product), applying whichever factor first costs fewer multiply-adds:
 * B first {@code in·p + a2·out} per token, A first {@code a1·in + a1·q·p}.
 */
public final class DiffuseKronALayer implements AdapterLayer {
    /** Saved key suffixes of the two factors. */
    public static final String A_KEY = "krona_A", B_KEY = "krona_B";

    private final Linear base;
    private final AdapterRuntime runtime;
    private final int a1, a2, p, q;
    private final float scale, dropout;
    final Tensor a;                 // [a1, a2]
    final Tensor b;                 // [out / a1, in / a2]
    private boolean enabled = true;

    /**
     * @param a [a1, a2] with a1 dividing out and a2 dividing in
     * @param b [out / a1, in / a2]
     */
    public DiffuseKronALayer(Linear base, AdapterRuntime runtime, float scale, float dropout, Tensor a, Tensor b) {
        int in = base.inFeatures(), out = base.outFeatures();
        if (a.rank() != 2 || b.rank() != 2 || (long) a.dim(0) * b.dim(0) != out || (long) a.dim(1) * b.dim(1) != in)
            throw new IllegalArgumentException(base.name() + ": Kronecker factors A " + a.describe() + " and B " + b.describe()
                    + " do not make [" + out + ", " + in + "] (need A [a1, a2], B [out / a1, in / a2])");
        this.base = base;
        this.runtime = runtime;
        this.a1 = a.dim(0);
        this.a2 = a.dim(1);
        this.p = b.dim(0);
        this.q = b.dim(1);
        this.scale = scale;
        this.dropout = dropout;
        this.a = a;
        this.b = b;
    }

    @Override public Linear base() { return base; }
    @Override public void setEnabled(boolean on) { enabled = on; }
    public Tensor a() { return a; }
    public Tensor b() { return b; }
    public float scale() { return scale; }

    @Override
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(A_KEY, a);
        m.put(B_KEY, b);
        return m;
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) return y;
        Tensor xd = runtime.training() && dropout > 0 ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        long bFirst = (long) base.inFeatures() * p + (long) a2 * base.outFeatures();
        long aFirst = (long) a1 * base.inFeatures() + (long) a1 * q * p;
        return TensorOps.add(y, delta(xd, bFirst <= aFirst));
    }

    /** {@code s · (A ⊗ B) x} for x [..., in] -> [..., out], applying B first or A first. */
    Tensor delta(Tensor x, boolean bFirst) {
        int in = base.inFeatures(), out = base.outFeatures();
        int n = Math.toIntExact(x.numel() / in);
        Tensor y;
        if (bFirst) {
            Tensor z = TensorOps.linear(TensorOps.reshape(x, n * a2, q), b, null);      // [N·a2, p] = X B^T per token
            y = TensorOps.bmm(a, TensorOps.reshape(z, n, a2, p));                        // [N, a1, p] = A (X B^T)
        } else {
            Tensor w = TensorOps.bmm(a, TensorOps.reshape(x, n, a2, q));                // [N, a1, q] = A X
            y = TensorOps.linear(TensorOps.reshape(w, n * a1, q), b, null);             // [N·a1, p] = (A X) B^T
        }
        int[] shape = x.shape();
        shape[shape.length - 1] = out;
        Tensor d = TensorOps.reshape(y, shape);
        return scale == 1f ? d : TensorOps.scale(d, scale);
    }

    /** {@code s · A ⊗ B} [out, in], formed explicitly (merge). */
    @Override
    public Tensor deltaWeight() {
        int in = base.inFeatures();
        float[] ad = a.toFloatArray(), bd = b.toFloatArray();
        float[] d = new float[base.outFeatures() * in];
        for (int i = 0; i < a1; i++)
            for (int j = 0; j < a2; j++) {
                float aij = scale * ad[i * a2 + j];
                for (int k = 0; k < p; k++) {
                    int row = (i * p + k) * in + j * q, brow = k * q;
                    for (int l = 0; l < q; l++) d[row + l] = aij * bd[brow + l];
                }
            }
        return Tensor.of(d, base.outFeatures(), in);
    }
}
