package io.peft4j.models;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.RopeTable;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Embedding;
import io.peft4j.nn.Linear;
import io.peft4j.nn.RMSNorm;
import io.peft4j.tensor.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Llama decoder family: {@code LlamaForCausalLM}, {@code MistralForCausalLM}, {@code Qwen2ForCausalLM} (and
 * llama2.c checkpoints, whose weights arrive in HF layout). Pre-norm blocks of RMSNorm, rotate-half RoPE attention
 * with grouped KV heads, and a gated MLP ({@code down(act(gate(x)) * up(x))}), following HF's modeling code.
 *
 * <p>Mistral's sliding window only matters once a sequence is longer than the window; such sequences are refused
 * rather than silently attended in full.
 */
public final class LlamaModel implements CausalLM {
    private final ModelConfig config;
    private final WeightSource weights;
    private final Embedding embed;          // model.embed_tokens [V, d]
    private final Layer[] layers;
    private final RMSNorm norm;             // model.norm [d]
    private final Linear lmHead;            // [V, d]; shares embed's weight when tied
    private final float scale;              // 1 / sqrt(Dh)
    private final double[] invFreq;         // [Dh / 2] after rope_scaling
    private volatile RopeTable rope;        // grown on demand: a 128k-position table would waste 64 MB

    private static final class Layer {
        final int index;
        final RMSNorm inputNorm, postNorm;
        final Linear q, k, v, o, gate, up, down;

        Layer(int index, RMSNorm inputNorm, RMSNorm postNorm, Linear q, Linear k, Linear v, Linear o, Linear gate, Linear up, Linear down) {
            this.index = index;
            this.inputNorm = inputNorm;
            this.postNorm = postNorm;
            this.q = q; this.k = k; this.v = v; this.o = o;
            this.gate = gate; this.up = up; this.down = down;
        }
    }

    LlamaModel(ModelConfig c, WeightSource source) {
        if (!c.architecture.llamaFamily()) throw new IllegalArgumentException(c.source + ": " + c.architecture.hfName + " is not a Llama-family model");
        this.config = c;
        this.weights = source;
        WeightLoader w = new WeightLoader(source);
        int d = c.hiddenSize, hq = c.numHeads * c.headDim, hkv = c.numKvHeads * c.headDim, f = c.intermediateSize;
        this.embed = new Embedding("model.embed_tokens", w.require("model.embed_tokens.weight", c.vocabSize, d));
        this.layers = new Layer[c.numLayers];
        boolean qkvBias = c.attentionBias;
        boolean oBias = c.attentionBias && c.architecture != Architecture.QWEN2;
        for (int i = 0; i < c.numLayers; i++) {
            String p = "model.layers." + i + ".";
            layers[i] = new Layer(i,
                    new RMSNorm(p + "input_layernorm", w.requireSmallF32(p + "input_layernorm.weight", d), c.normEps),
                    new RMSNorm(p + "post_attention_layernorm", w.requireSmallF32(p + "post_attention_layernorm.weight", d), c.normEps),
                    linear(w, p + "self_attn.q_proj", hq, d, qkvBias),
                    linear(w, p + "self_attn.k_proj", hkv, d, qkvBias),
                    linear(w, p + "self_attn.v_proj", hkv, d, qkvBias),
                    linear(w, p + "self_attn.o_proj", d, hq, oBias),
                    linear(w, p + "mlp.gate_proj", f, d, c.mlpBias),
                    linear(w, p + "mlp.up_proj", f, d, c.mlpBias),
                    linear(w, p + "mlp.down_proj", d, f, c.mlpBias));
        }
        this.norm = new RMSNorm("model.norm", w.requireSmallF32("model.norm.weight", d), c.normEps);
        Tensor head = c.tieWordEmbeddings ? null : w.optional("lm_head.weight", c.vocabSize, d);
        if (!c.tieWordEmbeddings && head == null)
            throw new IllegalArgumentException(source.location() + ": missing tensor 'lm_head.weight' (expected shape [" + c.vocabSize + ", " + d
                    + "]) and tie_word_embeddings is false");
        this.lmHead = new Linear("lm_head", head != null ? head : embed.weight(), null);
        this.scale = (float) (1.0 / Math.sqrt(c.headDim));
        this.invFreq = c.ropeInvFreq();
    }

    private static Linear linear(WeightLoader w, String name, int out, int in, boolean bias) {
        return new Linear(name, w.require(name + ".weight", out, in), bias ? w.requireSmallF32(name + ".bias", out) : null);
    }

    @Override public ModelConfig config() { return config; }
    @Override public WeightSource weights() { return weights; }

    public Embedding embedTokens() { return embed; }
    public RMSNorm finalNorm() { return norm; }
    public Linear lmHead() { return lmHead; }

    @Override
    public Tensor hidden(int[] ids, int batch, int seqLen, KvCache cache) {
        int start = Decoding.checkForward(config, ids, batch, seqLen, cache);
        if (config.slidingWindow != null && start + seqLen > config.slidingWindow)
            throw new IllegalArgumentException(config.source + ": sequence of " + (start + seqLen) + " positions exceeds sliding_window "
                    + config.slidingWindow + ", which peft4j does not implement (it attends in full up to the window)");
        int[] positions = new int[seqLen];
        for (int t = 0; t < seqLen; t++) positions[t] = start + t;
        RopeTable table = ropeTable(start + seqLen);
        Tensor x = embed.forward(ids);                                   // [B*T, d]
        for (Layer layer : layers) x = block(layer, x, batch, seqLen, positions, table, cache, start);
        if (cache != null) cache.advance(seqLen);
        return norm.forward(x);
    }

    private Tensor block(Layer l, Tensor x, int b, int t, int[] positions, RopeTable table, KvCache cache, int start) {
        ModelConfig c = config;
        Tensor h = l.inputNorm.forward(x);
        Tensor q = TensorOps.reshape(l.q.forward(h), b, t, c.numHeads, c.headDim);
        Tensor k = TensorOps.reshape(l.k.forward(h), b, t, c.numKvHeads, c.headDim);
        Tensor v = TensorOps.reshape(l.v.forward(h), b, t, c.numKvHeads, c.headDim);
        q = NnOps.rope(q, table, positions);
        k = NnOps.rope(k, table, positions);
        if (cache != null) {
            cache.write(l.index, k, v);
            k = cache.keys(l.index, start + t);
            v = cache.values(l.index, start + t);
        }
        Tensor a = NnOps.attention(q, k, v, true, start, null, scale);  // [B, T, Hq, Dh]
        x = TensorOps.add(x, l.o.forward(TensorOps.reshape(a, b * t, c.numHeads * c.headDim)));
        h = l.postNorm.forward(x);
        Tensor gate = l.gate.forward(h), up = l.up.forward(h);
        Tensor act = c.siluAct() ? NnOps.swiglu(gate, up) : TensorOps.mul(NnOps.gelu(gate, c.tanhGelu()), up);
        return TensorOps.add(x, l.down.forward(act));
    }

    @Override
    public Tensor logits(Tensor hidden) { return lmHead.forward(hidden); }

    private RopeTable ropeTable(int needed) {
        RopeTable r = rope;
        if (r != null && r.maxPositions >= needed) return r;
        synchronized (this) {
            r = rope;
            if (r != null && r.maxPositions >= needed) return r;
            int size = Math.min(config.maxPositions, Math.max(needed, Math.max(512, r == null ? 0 : 2 * r.maxPositions)));
            r = new RopeTable(RopeTable.Layout.ROTATE_HALF, config.headDim, config.headDim, size, invFreq);
            rope = r;
            return r;
        }
    }

    @Override
    public Map<String, Embedding> embeddings() {
        return Map.of(embed.name(), embed);
    }

    @Override
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>();
        for (Layer l : layers)
            for (Linear lin : new Linear[] {l.q, l.k, l.v, l.o, l.gate, l.up, l.down}) m.put(lin.name(), lin);
        m.put(lmHead.name(), lmHead);
        return Collections.unmodifiableMap(m);
    }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", embed.weight());
        for (Layer l : layers) {
            String p = "model.layers." + l.index + ".";
            for (Linear lin : new Linear[] {l.q, l.k, l.v, l.o}) Decoding.putLinear(m, lin);
            for (Linear lin : new Linear[] {l.gate, l.up, l.down}) Decoding.putLinear(m, lin);
            m.put(p + "input_layernorm.weight", l.inputNorm.weight());
            m.put(p + "post_attention_layernorm.weight", l.postNorm.weight());
        }
        m.put("model.norm.weight", norm.weight());
        if (!config.tieWordEmbeddings) m.put("lm_head.weight", lmHead.weight());
        return Collections.unmodifiableMap(m);
    }
}
