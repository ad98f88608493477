package io.peft4j.models;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Embedding;
import io.peft4j.nn.LayerNorm;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code GPT2LMHeadModel}: learned absolute positions, pre-LayerNorm blocks, fused {@code c_attn} (q|k|v) and
 * Conv1D weights stored [in, out] (held as transposed views, never copied), GELU (tanh form for {@code gelu_new}),
 * LM head tied to {@code wte} unless the checkpoint has its own {@code lm_head.weight}.
 * Checkpoints with or without the {@code transformer.} prefix load alike.
 */
public final class Gpt2Model implements CausalLM {
    private final ModelConfig config;
    private final WeightSource weights;
    private final Embedding wte;            // [V, d]
    private final Embedding wpe;            // [maxPos, d]
    private final Block[] blocks;
    private final LayerNorm lnF;
    private final Linear lmHead;            // [V, d]
    private final boolean headTied;
    private final float scale;

    private record Block(int index, LayerNorm ln1, Linear cAttn, Linear attnProj, LayerNorm ln2, Linear fc, Linear mlpProj) {}

    Gpt2Model(ModelConfig c, WeightSource source) {
        if (c.architecture != Architecture.GPT2) throw new IllegalArgumentException(c.source + ": not a GPT-2 config");
        this.config = c;
        this.weights = source;
        WeightLoader w = new WeightLoader(source, "transformer.");
        int d = c.hiddenSize, f = c.intermediateSize;
        this.wte = new Embedding("transformer.wte", w.require("transformer.wte.weight", c.vocabSize, d));
        this.wpe = new Embedding("transformer.wpe", w.require("transformer.wpe.weight", c.maxPositions, d));
        this.blocks = new Block[c.numLayers];
        for (int i = 0; i < c.numLayers; i++) {
            String p = "transformer.h." + i + ".";
            blocks[i] = new Block(i,
                    layerNorm(w, p + "ln_1", d, c.normEps),
                    conv1d(w, p + "attn.c_attn", d, 3 * d),
                    conv1d(w, p + "attn.c_proj", d, d),
                    layerNorm(w, p + "ln_2", d, c.normEps),
                    conv1d(w, p + "mlp.c_fc", d, f),
                    conv1d(w, p + "mlp.c_proj", f, d));
        }
        this.lnF = layerNorm(w, "transformer.ln_f", d, c.normEps);
        Tensor head = w.optional("lm_head.weight", c.vocabSize, d);
        if (head == null && !c.tieWordEmbeddings)
            throw new IllegalArgumentException(source.location() + ": missing tensor 'lm_head.weight' and tie_word_embeddings is false");
        this.headTied = head == null;
        this.lmHead = new Linear("lm_head", headTied ? wte.weight() : head, null);
        this.scale = (float) (1.0 / Math.sqrt(c.headDim));
    }

    private static LayerNorm layerNorm(WeightLoader w, String name, int d, float eps) {
        return new LayerNorm(name, w.requireSmallF32(name + ".weight", d), w.requireSmallF32(name + ".bias", d), eps);
    }

    private static Linear conv1d(WeightLoader w, String name, int in, int out) {
        return new Linear(name, w.require(name + ".weight", in, out), w.requireSmallF32(name + ".bias", out), true);
    }

    @Override public ModelConfig config() { return config; }
    @Override public WeightSource weights() { return weights; }

    @Override
    public Tensor hidden(int[] ids, int batch, int seqLen, KvCache cache) {
        int start = Decoding.checkForward(config, ids, batch, seqLen, cache);
        int d = config.hiddenSize, h = config.numHeads, dh = config.headDim;
        int[] pos = new int[batch * seqLen];
        for (int i = 0; i < pos.length; i++) pos[i] = start + i % seqLen;
        Tensor x = TensorOps.add(wte.forward(ids), wpe.forward(pos));          // [B*T, d]
        for (Block blk : blocks) {
            Tensor qkv = blk.cAttn.forward(blk.ln1.forward(x));                 // [B*T, 3d]
            Tensor q = TensorOps.reshape(TensorOps.slice(qkv, 1, 0, d), batch, seqLen, h, dh);
            Tensor k = TensorOps.reshape(TensorOps.slice(qkv, 1, d, 2 * d), batch, seqLen, h, dh);
            Tensor v = TensorOps.reshape(TensorOps.slice(qkv, 1, 2 * d, 3 * d), batch, seqLen, h, dh);
            if (cache != null) {
                cache.write(blk.index, k, v);
                k = cache.keys(blk.index, start + seqLen);
                v = cache.values(blk.index, start + seqLen);
            }
            Tensor a = NnOps.attention(q, k, v, true, start, null, scale);
            x = TensorOps.add(x, blk.attnProj.forward(TensorOps.reshape(a, batch * seqLen, d)));
            Tensor m = NnOps.gelu(blk.fc.forward(blk.ln2.forward(x)), config.tanhGelu());
            x = TensorOps.add(x, blk.mlpProj.forward(m));
        }
        if (cache != null) cache.advance(seqLen);
        return lnF.forward(x);
    }

    @Override
    public Tensor logits(Tensor hidden) { return lmHead.forward(hidden); }

    @Override
    public Map<String, Embedding> embeddings() {
        Map<String, Embedding> m = new LinkedHashMap<>();
        m.put(wte.name(), wte);
        m.put(wpe.name(), wpe);
        return m;
    }

    @Override
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>();
        for (Block b : blocks) for (Linear l : new Linear[] {b.cAttn, b.attnProj, b.fc, b.mlpProj}) m.put(l.name(), l);
        m.put(lmHead.name(), lmHead);
        return Collections.unmodifiableMap(m);
    }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("transformer.wte.weight", wte.weight());
        m.put("transformer.wpe.weight", wpe.weight());
        for (Block b : blocks) {
            putNorm(m, b.ln1);
            Decoding.putLinear(m, b.cAttn);
            Decoding.putLinear(m, b.attnProj);
            putNorm(m, b.ln2);
            Decoding.putLinear(m, b.fc);
            Decoding.putLinear(m, b.mlpProj);
        }
        putNorm(m, lnF);
        if (!headTied) m.put("lm_head.weight", lmHead.weight());
        return Collections.unmodifiableMap(m);
    }

    static void putNorm(Map<String, Tensor> m, LayerNorm n) {
        m.put(n.name() + ".weight", n.weight());
        if (n.bias() != null) m.put(n.name() + ".bias", n.bias());
    }
}
