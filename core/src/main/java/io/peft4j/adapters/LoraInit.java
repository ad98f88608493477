package io.peft4j.adapters;

import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Creates {@link LoraLayer}s: fresh ones by PEFT's {@code init_lora_weights} options, or from saved tensors.
 * <ul>
 *   <li>{@code true}: A ~ Kaiming-uniform(a = sqrt 5), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0 (identity at init).</li>
 *   <li>{@code gaussian}: A ~ N(0, 1/r); B = 0.</li>
 *   <li>{@code false}: A and B both random (not an identity; for tests).</li>
 *   <li>{@code pissa} / {@code pissa_niter_N}: A, B from the top-r singular triplets of W; W rewritten to W - s B A.</li>
 *   <li>{@code olora}: B, A from the thin QR of W (first r columns of Q, rows of R); W rewritten to W - s B A.</li>
 * </ul>
 * DoRA's magnitude starts at the row norms of W + s B A, so DoRA too is an identity at init.
 */
final class LoraInit {
    private LoraInit() {}

    static LoraLayer create(String adapter, String module, Linear lin, LoraConfig c, AdapterRuntime runtime, SplittableRandom rng) {
        int r = c.rankFor(module);
        int in = lin.inFeatures(), out = lin.outFeatures();
        checkRank(module, r, in, out);
        float scaling = (float) c.scalingFor(module);
        Tensor a, b;
        switch (c.initLoraWeights()) {
            case "true" -> { a = uniform(rng, 1 / Math.sqrt(in), r, in); b = Tensor.zeros(out, r); }
            case "gaussian" -> { a = gaussian(rng, 1.0 / r, r, in); b = Tensor.zeros(out, r); }
            case "false" -> { a = uniform(rng, 1 / Math.sqrt(in), r, in); b = uniform(rng, 1 / Math.sqrt(r), out, r); }
            default -> {
                Tensor[] ab = WeightRewritingInit.initialise(c.initLoraWeights(), lin, r, scaling);
                a = ab[0];
                b = ab[1];
            }
        }
        Tensor bBias = c.loraBias() ? Tensor.zeros(out) : null;
        a.requiresGrad(true).name(module + ".lora_A");
        b.requiresGrad(true).name(module + ".lora_B");
        if (bBias != null) bBias.requiresGrad(true).name(module + ".lora_B.bias");
        LoraLayer layer = new LoraLayer(adapter, lin, runtime, r, scaling, (float) c.loraDropout(), a, b, bBias, null);
        if (c.useDora()) {
            layer.magnitude = Tensor.of(layer.rowNorms(), out).requiresGrad(true).name(module + ".lora_magnitude_vector");
        }
        return layer;
    }

    static LoraLayer fromTensors(String adapter, String module, Linear lin, LoraConfig c, AdapterRuntime runtime,
                                 Tensor a, Tensor b, Tensor bBias, Tensor magnitude, Path file) throws IOException {
        return fromTensors(adapter, module, lin, c, runtime, a, b, null, null, bBias, magnitude, file);
    }

    /** A saved layer with a method's middle factor {@code mid} ([r] or [r, r]) and {@code gain} ([1]), either may be null. */
    static LoraLayer fromTensors(String adapter, String module, Linear lin, LoraConfig c, AdapterRuntime runtime,
                                 Tensor a, Tensor b, Tensor mid, Tensor gain, Tensor bBias, Tensor magnitude, Path file) throws IOException {
        int in = lin.inFeatures(), out = lin.outFeatures();
        int r = a.dim(0);
        if (a.rank() != 2 || a.dim(1) != in)
            throw new IOException(file + ": " + module + ".lora_A has shape " + Arrays.toString(a.shape()) + ", expected [r, " + in + "]");
        if (b.rank() != 2 || b.dim(0) != out || b.dim(1) != r)
            throw new IOException(file + ": " + module + ".lora_B has shape " + Arrays.toString(b.shape()) + ", expected [" + out + ", " + r + "]");
        if (r != c.rankFor(module))
            throw new IOException(file + ": " + module + " has rank " + r + " but the config gives " + c.rankFor(module));
        if (bBias != null && bBias.numel() != out) throw new IOException(file + ": " + module + ".lora_B.bias has the wrong shape");
        if (magnitude != null && magnitude.numel() != out) throw new IOException(file + ": " + module + ".lora_magnitude_vector has the wrong shape");
        if (c.useDora() && magnitude == null) throw new IOException(file + ": use_dora is set but " + module + " has no lora_magnitude_vector");
        // PEFT re-runs a weight-rewriting init on load, then overwrites A and B: the base becomes W - s B0 A0 again
        if (WeightRewritingInit.rewritesBase(c.initLoraWeights()))
            WeightRewritingInit.initialise(c.initLoraWeights(), lin, r, (float) c.scalingFor(module));
        a.requiresGrad(true).name(module + ".lora_A");
        b.requiresGrad(true).name(module + ".lora_B");
        if (bBias != null) bBias.requiresGrad(true);
        if (magnitude != null) magnitude = magnitude.reshape(out).requiresGrad(true);
        return new LoraLayer(adapter, lin, runtime, r, (float) c.scalingFor(module), (float) c.loraDropout(), a, b, mid, gain, bBias, magnitude);
    }

    /** PEFT's embedding init: A [r, V] zero, B [d, r] ~ N(0, 1) (false: both random); an identity at init. */
    static LoraEmbeddingLayer createEmbedding(String adapter, String module, io.peft4j.nn.Embedding emb, LoraConfig c, SplittableRandom rng) {
        int r = c.rankFor(module), v = emb.numEmbeddings(), d = emb.dim();
        checkRank(module, r, v, d);
        if (c.useDora()) throw new IllegalArgumentException(module + ": DoRA on embedding layers is not supported");
        if (WeightRewritingInit.rewritesBase(c.initLoraWeights()))
            throw new IllegalArgumentException(module + ": init_lora_weights=" + c.initLoraWeights() + " applies to linear layers only");
        Tensor a = c.initLoraWeights().equals("false") ? gaussian(rng, 1.0, r, v) : Tensor.zeros(r, v);
        Tensor b = gaussian(rng, 1.0, d, r);
        return new LoraEmbeddingLayer(adapter, emb, r, (float) c.scalingFor(module), a.name(module + ".lora_embedding_A"), b.name(module + ".lora_embedding_B"));
    }

    static LoraEmbeddingLayer embeddingFromTensors(String adapter, String module, io.peft4j.nn.Embedding emb, LoraConfig c,
                                                   Tensor a, Tensor b, Path file) throws IOException {
        int v = emb.numEmbeddings(), d = emb.dim(), r = a.dim(0);
        if (a.rank() != 2 || a.dim(1) != v)
            throw new IOException(file + ": " + module + ".lora_embedding_A has shape " + Arrays.toString(a.shape()) + ", expected [r, " + v + "]");
        if (b.rank() != 2 || b.dim(0) != d || b.dim(1) != r)
            throw new IOException(file + ": " + module + ".lora_embedding_B has shape " + Arrays.toString(b.shape()) + ", expected [" + d + ", " + r + "]");
        return new LoraEmbeddingLayer(adapter, emb, r, (float) c.scalingFor(module), a, b);
    }

    static void checkRank(String module, int r, int in, int out) {
        if (r > Math.min(in, out))
            throw new IllegalArgumentException("rank r=" + r + " is larger than layer " + module + " allows (in " + in + ", out " + out + ")");
    }

    static Tensor uniform(SplittableRandom rng, double bound, int... shape) {
        float[] d = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < d.length; i++) d[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        return Tensor.of(d, shape);
    }

    static Tensor gaussian(SplittableRandom rng, double std, int... shape) {
        float[] d = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            double u1 = rng.nextDouble(), u2 = rng.nextDouble();
            d[i] = (float) (std * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2));
        }
        return Tensor.of(d, shape);
    }
}
