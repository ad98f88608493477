package io.peft4j.models;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Activations;
import io.peft4j.nn.Embedding;
import io.peft4j.nn.LayerNorm;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code BertModel} and {@code BertForSequenceClassification}: word + position + token-type embeddings, post-LN
 * encoder blocks with erf GELU, a tanh pooler over the first token and (for the classifier) a linear head.
 * Module names follow the HF class loaded: {@code encoder.layer.0...} for BertModel, {@code bert.encoder...} for
 * the classifier; checkpoints of either form load into either.
 */
public final class BertModel implements Model {
    private final ModelConfig config;
    private final WeightSource weights;
    private final String prefix;            // "" for BertModel, "bert." for the classifier
    private final Embedding word, position, tokenType;
    private final LayerNorm embNorm;
    private final Layer[] layers;
    private final Linear pooler;            // null when the checkpoint has no pooler
    private final Linear classifier;        // null for BertModel
    private final float scale;

    private record Layer(Linear query, Linear key, Linear value, Linear attnOut, LayerNorm attnNorm,
                         Linear intermediate, Linear output, LayerNorm outNorm) {}

    /** The encoder's outputs: hidden [B*T, d], pooled [B, d] (or null), classification logits [B, labels] (or null). */
    public record Output(Tensor hidden, Tensor pooled, Tensor logits) {}

    BertModel(ModelConfig c, WeightSource source) {
        if (!c.architecture.bert()) throw new IllegalArgumentException(c.source + ": not a BERT config");
        this.config = c;
        this.weights = source;
        boolean cls = c.architecture == Architecture.BERT_SEQUENCE_CLASSIFICATION;
        this.prefix = cls ? "bert." : "";
        WeightLoader w = new WeightLoader(source, "bert.");
        int d = c.hiddenSize, f = c.intermediateSize;
        String e = prefix + "embeddings.";
        this.word = new Embedding(e + "word_embeddings", w.require(e + "word_embeddings.weight", c.vocabSize, d));
        this.position = new Embedding(e + "position_embeddings", w.require(e + "position_embeddings.weight", c.maxPositions, d));
        this.tokenType = new Embedding(e + "token_type_embeddings", w.require(e + "token_type_embeddings.weight", c.typeVocabSize, d));
        this.embNorm = layerNorm(w, e + "LayerNorm", d, c.normEps);
        this.layers = new Layer[c.numLayers];
        for (int i = 0; i < c.numLayers; i++) {
            String p = prefix + "encoder.layer." + i + ".";
            layers[i] = new Layer(
                    linear(w, p + "attention.self.query", d, d),
                    linear(w, p + "attention.self.key", d, d),
                    linear(w, p + "attention.self.value", d, d),
                    linear(w, p + "attention.output.dense", d, d),
                    layerNorm(w, p + "attention.output.LayerNorm", d, c.normEps),
                    linear(w, p + "intermediate.dense", f, d),
                    linear(w, p + "output.dense", d, f),
                    layerNorm(w, p + "output.LayerNorm", d, c.normEps));
        }
        Tensor pw = w.optional(prefix + "pooler.dense.weight", d, d);
        this.pooler = pw == null ? null : new Linear(prefix + "pooler.dense", pw, w.requireSmallF32(prefix + "pooler.dense.bias", d));
        if (cls) {
            if (pooler == null) throw new IllegalArgumentException(source.location() + ": missing tensor 'bert.pooler.dense.weight' (the classifier reads the pooled output)");
            this.classifier = new Linear("classifier", w.require("classifier.weight", c.numLabels, d), w.requireSmallF32("classifier.bias", c.numLabels));
        } else this.classifier = null;
        this.scale = (float) (1.0 / Math.sqrt(c.headDim));
    }

    private static LayerNorm layerNorm(WeightLoader w, String name, int d, float eps) {
        return new LayerNorm(name, w.requireSmallF32(name + ".weight", d), w.requireSmallF32(name + ".bias", d), eps);
    }

    private static Linear linear(WeightLoader w, String name, int out, int in) {
        return new Linear(name, w.require(name + ".weight", out, in), w.requireSmallF32(name + ".bias", out));
    }

    @Override public ModelConfig config() { return config; }
    @Override public WeightSource weights() { return weights; }

    /**
     * Encodes {@code batch} sequences of {@code seqLen} tokens. {@code tokenTypes} (null = all 0) and
     * {@code attentionMask} (null = all 1; 0 marks padding keys) have the shape of {@code ids}.
     */
    public Output forward(int[] ids, int[] tokenTypes, int[] attentionMask, int batch, int seqLen) {
        ModelConfig c = config;
        int n = batch * seqLen;
        if (batch <= 0 || seqLen <= 0 || ids.length != n)
            throw new IllegalArgumentException("BERT forward got " + ids.length + " ids for batch " + batch + " x seqLen " + seqLen);
        if (seqLen > c.maxPositions) throw new IllegalArgumentException("sequence of " + seqLen + " exceeds max_position_embeddings " + c.maxPositions + " of " + c.source);
        if (tokenTypes != null && tokenTypes.length != n) throw new IllegalArgumentException("token types have " + tokenTypes.length + " entries, ids " + n);
        if (attentionMask != null && attentionMask.length != n) throw new IllegalArgumentException("attention mask has " + attentionMask.length + " entries, ids " + n);
        int[] pos = new int[n];
        for (int i = 0; i < n; i++) pos[i] = i % seqLen;
        int[] types = tokenTypes != null ? tokenTypes : new int[n];
        Tensor x = TensorOps.add(TensorOps.add(word.forward(ids), tokenType.forward(types)), position.forward(pos));
        x = embNorm.forward(x);                                                  // [B*T, d]
        Tensor mask = null;
        if (attentionMask != null) {
            // HF adds finfo.min to masked keys; any value that underflows exp() to 0 gives the same softmax
            float[] m = new float[n];
            for (int i = 0; i < n; i++) m[i] = attentionMask[i] != 0 ? 0f : -1e30f;
            mask = Tensor.of(m, batch, 1, 1, seqLen);
        }
        int h = c.numHeads, dh = c.headDim, d = c.hiddenSize;
        for (Layer l : layers) {
            Tensor q = TensorOps.reshape(l.query.forward(x), batch, seqLen, h, dh);
            Tensor k = TensorOps.reshape(l.key.forward(x), batch, seqLen, h, dh);
            Tensor v = TensorOps.reshape(l.value.forward(x), batch, seqLen, h, dh);
            Tensor a = TensorOps.reshape(NnOps.attention(q, k, v, false, 0, mask, scale), n, d);
            x = l.attnNorm.forward(TensorOps.add(l.attnOut.forward(a), x));
            Tensor m = NnOps.gelu(l.intermediate.forward(x), c.tanhGelu());
            x = l.outNorm.forward(TensorOps.add(l.output.forward(m), x));
        }
        Tensor pooled = null, logits = null;
        if (pooler != null) {
            Tensor first = TensorOps.reshape(TensorOps.slice(TensorOps.reshape(x, batch, seqLen, d), 1, 0, 1), batch, d);
            pooled = Activations.tanh(pooler.forward(first));
            if (classifier != null) logits = classifier.forward(pooled);
        }
        return new Output(x, pooled, logits);
    }

    public Output forward(int[] ids) { return forward(ids, null, null, 1, ids.length); }

    /** Number of classification labels (0 for BertModel). */
    public int numLabels() { return classifier == null ? 0 : classifier.outFeatures(); }

    @Override
    public Map<String, Embedding> embeddings() {
        Map<String, Embedding> m = new LinkedHashMap<>();
        m.put(word.name(), word);
        m.put(position.name(), position);
        m.put(tokenType.name(), tokenType);
        return m;
    }

    @Override
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>();
        for (Layer l : layers)
            for (Linear lin : new Linear[] {l.query, l.key, l.value, l.attnOut, l.intermediate, l.output}) m.put(lin.name(), lin);
        if (pooler != null) m.put(pooler.name(), pooler);
        if (classifier != null) m.put(classifier.name(), classifier);
        return Collections.unmodifiableMap(m);
    }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(word.name() + ".weight", word.weight());
        m.put(position.name() + ".weight", position.weight());
        m.put(tokenType.name() + ".weight", tokenType.weight());
        Gpt2Model.putNorm(m, embNorm);
        for (Layer l : layers) {
            Decoding.putLinear(m, l.query);
            Decoding.putLinear(m, l.key);
            Decoding.putLinear(m, l.value);
            Decoding.putLinear(m, l.attnOut);
            Gpt2Model.putNorm(m, l.attnNorm);
            Decoding.putLinear(m, l.intermediate);
            Decoding.putLinear(m, l.output);
            Gpt2Model.putNorm(m, l.outNorm);
        }
        if (pooler != null) Decoding.putLinear(m, pooler);
        if (classifier != null) Decoding.putLinear(m, classifier);
        return Collections.unmodifiableMap(m);
    }

    @Override
    public String toString() { return "BertModel(" + config.summary() + ")"; }
}
