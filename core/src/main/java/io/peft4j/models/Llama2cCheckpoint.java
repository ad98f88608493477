package io.peft4j.models;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A llama2.c {@code .bin} checkpoint (Karpathy's {@code export.py}), memory-mapped and exposed under Hugging Face
 * Llama names and layout, so the rest of peft4j sees one kind of Llama.
 *
 * <p>Formats: the legacy v0 file (a 7 x int32 header; a negative vocab size means an untied classifier) and the
 * versioned v1 file (magic {@code "ak42"}, version 1, fp32). Version 2 (Q8_0) is rejected with a clear error.
 *
 * <p>Every tensor is a zero-copy view over the mapping except {@code q_proj} and {@code k_proj}: llama2.c rotates
 * interleaved pairs (2i, 2i+1) while HF Llama rotates halves (i, i + d/2), so their rows are permuted per head, as
 * HF's conversion script does, into small heap copies. The mapping lives until {@link #close()}; tensors obtained
 * from this object must not be used after that.
 */
public final class Llama2cCheckpoint implements AutoCloseable {
    /** {@code "ak42"} read as a little-endian uint32. */
    public static final int MAGIC = 0x616b3432;
    private static final int V1_HEADER_BYTES = 256;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The hyper-parameters of a llama2.c model, as stored in its header. */
    public record Config(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize, int seqLen,
                         boolean sharedClassifier, int version) {
        public int headDim() { return dim / nHeads; }
        public int kvDim() { return headDim() * nKvHeads; }
    }

    private final Path path;
    private final Arena arena;
    private final Config config;
    private final Map<String, Tensor> tensors; // HF name -> tensor, in HF module order

    private Llama2cCheckpoint(Path path, Arena arena, Config config, Map<String, Tensor> tensors) {
        this.path = path;
        this.arena = arena;
        this.config = config;
        this.tensors = tensors;
    }

    /** Memory-maps and validates {@code file}; any inconsistency is one error line naming the file. */
    public static Llama2cCheckpoint open(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new NoSuchFileException(file.toString(), null, "llama2.c checkpoint not found");
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            }
            Config cfg = readHeader(file, seg);
            Map<String, Tensor> t = cfg.version == 0 ? mapLegacy(file, seg, cfg) : mapV1(file, seg, cfg);
            return new Llama2cCheckpoint(file, arena, cfg, Collections.unmodifiableMap(t));
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    static Config readHeader(Path file, MemorySegment seg) throws IOException {
        long size = seg.byteSize();
        if (size < 28) throw corrupt(file, "file of " + size + " bytes is shorter than the 28-byte llama2.c header");
        int first = seg.get(I32, 0);
        if (first == MAGIC) {
            if (size < V1_HEADER_BYTES) throw corrupt(file, "versioned header is truncated (" + size + " of 256 bytes)");
            int version = seg.get(I32, 4);
            if (version == 2)
                throw new IOException(file + ": llama2.c version 2 (int8 Q8_0) checkpoints are not supported; export with --version 1 (fp32) or 0");
            if (version != 1) throw corrupt(file, "unknown llama2.c checkpoint version " + version);
            int[] h = new int[7];
            for (int i = 0; i < 7; i++) h[i] = seg.get(I32, 8 + 4L * i);
            boolean shared = seg.get(ValueLayout.JAVA_BYTE, 36) != 0;
            return validate(file, h, h[5], shared, 1);
        }
        int[] h = new int[7];
        for (int i = 0; i < 7; i++) h[i] = seg.get(I32, 4L * i);
        return validate(file, h, Math.abs(h[5]), h[5] > 0, 0);
    }

    private static Config validate(Path file, int[] h, int vocab, boolean shared, int version) throws IOException {
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], seqLen = h[6];
        String hdr = "dim=" + dim + " hidden_dim=" + hidden + " n_layers=" + layers + " n_heads=" + heads
                + " n_kv_heads=" + kvHeads + " vocab_size=" + h[5] + " seq_len=" + seqLen;
        // Bounds keep garbage headers (a wrong file) from passing as a huge model.
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0
                || dim > 1 << 16 || hidden > 1 << 18 || layers > 1024 || vocab > 1 << 22 || seqLen > 1 << 24)
            throw corrupt(file, "implausible header (" + hdr + "): not a llama2.c checkpoint?");
        if (dim % heads != 0 || heads % kvHeads != 0 || (dim / heads) % 2 != 0)
            throw corrupt(file, "inconsistent header (" + hdr + "): dim must split into an even head size and n_heads into n_kv_heads groups");
        return new Config(dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared, version);
    }

    private static IOException corrupt(Path file, String what) {
        return new IOException(file + ": corrupt llama2.c checkpoint: " + what);
    }

    /** Walks the file in order, handing out views; fails naming the tensor that runs past the end. */
    private static final class Cursor {
        final Path file;
        final MemorySegment seg;
        long pos;

        Cursor(Path file, MemorySegment seg, long pos) { this.file = file; this.seg = seg; this.pos = pos; }

        Tensor next(String what, int... shape) throws IOException {
            long bytes = Tensor.numel(shape) * 4;
            if (pos + bytes > seg.byteSize())
                throw corrupt(file, "truncated at " + what + " (needs bytes " + pos + ".." + (pos + bytes) + ", file has " + seg.byteSize() + ")");
            Tensor t = Tensor.ofSegment(seg.asSlice(pos, bytes), DType.F32, shape);
            pos += bytes;
            return t;
        }

        void skip(String what, long floats) throws IOException {
            if (pos + floats * 4 > seg.byteSize()) throw corrupt(file, "truncated at " + what);
            pos += floats * 4;
        }

        void expectEnd() throws IOException {
            if (pos != seg.byteSize())
                throw corrupt(file, (seg.byteSize() - pos) + " unexpected trailing bytes after the last tensor (header does not match the data)");
        }
    }

    /** Per-kind stacks, each [n_layers, ...]. */
    private record Stacked(Tensor emb, Tensor rmsAtt, Tensor wq, Tensor wk, Tensor wv, Tensor wo, Tensor rmsFfn,
                           Tensor w1, Tensor w2, Tensor w3, Tensor rmsFinal, Tensor wcls) {}

    private static Map<String, Tensor> mapLegacy(Path file, MemorySegment seg, Config c) throws IOException {
        Cursor cur = new Cursor(file, seg, 28);
        int L = c.nLayers, d = c.dim, h = c.hiddenDim, kv = c.kvDim();
        Tensor emb = cur.next("token_embedding", c.vocabSize, d);
        Tensor rmsAtt = cur.next("rms_att", L, d);
        Tensor wq = cur.next("wq", L, d, d);
        Tensor wk = cur.next("wk", L, kv, d);
        Tensor wv = cur.next("wv", L, kv, d);
        Tensor wo = cur.next("wo", L, d, d);
        Tensor rmsFfn = cur.next("rms_ffn", L, d);
        Tensor w1 = cur.next("w1", L, h, d);
        Tensor w2 = cur.next("w2", L, d, h);
        Tensor w3 = cur.next("w3", L, h, d);
        Tensor rmsFinal = cur.next("rms_final", d);
        // freq_cis_real and freq_cis_imag, [seq_len, head_dim/2] each: recomputed by the model, so skipped
        cur.skip("freq_cis_real", (long) c.seqLen * c.headDim() / 2);
        cur.skip("freq_cis_imag", (long) c.seqLen * c.headDim() / 2);
        Tensor wcls = c.sharedClassifier ? null : cur.next("wcls", c.vocabSize, d);
        cur.expectEnd();
        return toHf(c, new Stacked(emb, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, wcls));
    }

    private static Map<String, Tensor> mapV1(Path file, MemorySegment seg, Config c) throws IOException {
        Cursor cur = new Cursor(file, seg, V1_HEADER_BYTES);
        int L = c.nLayers, d = c.dim, h = c.hiddenDim, kv = c.kvDim();
        Tensor rmsAtt = cur.next("rms_att", L, d);
        Tensor rmsFfn = cur.next("rms_ffn", L, d);
        Tensor rmsFinal = cur.next("rms_final", d);
        Tensor emb = cur.next("token_embedding", c.vocabSize, d);
        Tensor wq = cur.next("wq", L, d, d);
        Tensor wk = cur.next("wk", L, kv, d);
        Tensor wv = cur.next("wv", L, kv, d);
        Tensor wo = cur.next("wo", L, d, d);
        Tensor w1 = cur.next("w1", L, h, d);
        Tensor w2 = cur.next("w2", L, d, h);
        Tensor w3 = cur.next("w3", L, h, d);
        Tensor wcls = c.sharedClassifier ? null : cur.next("wcls", c.vocabSize, d);
        cur.expectEnd();
        return toHf(c, new Stacked(emb, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, wcls));
    }

    private static Map<String, Tensor> toHf(Config c, Stacked s) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", s.emb);
        for (int l = 0; l < c.nLayers; l++) {
            String p = "model.layers." + l + ".";
            m.put(p + "input_layernorm.weight", layer(s.rmsAtt, l));
            m.put(p + "self_attn.q_proj.weight", permuteRope(layer(s.wq, l), c.nHeads));
            m.put(p + "self_attn.k_proj.weight", permuteRope(layer(s.wk, l), c.nKvHeads));
            m.put(p + "self_attn.v_proj.weight", layer(s.wv, l));
            m.put(p + "self_attn.o_proj.weight", layer(s.wo, l));
            m.put(p + "post_attention_layernorm.weight", layer(s.rmsFfn, l));
            m.put(p + "mlp.gate_proj.weight", layer(s.w1, l));
            m.put(p + "mlp.up_proj.weight", layer(s.w3, l));
            m.put(p + "mlp.down_proj.weight", layer(s.w2, l));
        }
        m.put("model.norm.weight", s.rmsFinal);
        if (s.wcls != null) m.put("lm_head.weight", s.wcls);
        m.forEach((k, v) -> v.name(k));
        return m;
    }

    /** Layer {@code l} of a stacked [n_layers, ...] view, as its own contiguous segment view. */
    private static Tensor layer(Tensor stacked, int l) {
        int[] shape = stacked.shape();
        int[] inner = Arrays.copyOfRange(shape, 1, shape.length);
        long bytes = Tensor.numel(inner) * 4;
        MemorySegment s = stacked.storage().segment().asSlice(l * bytes, bytes);
        return Tensor.ofSegment(s, DType.F32, inner);
    }

    /**
     * HF's {@code permute}: view [heads, head_dim/2, 2, in] -> transpose(1, 2) -> reshape [rows, in]. Output row
     * {@code h*hd + j*(hd/2) + i} is input row {@code h*hd + 2i + j}: the interleaved pair (2i, 2i+1) becomes the
     * half pair (i, i + hd/2) that rotate-half RoPE expects. A heap copy; bit-exact (no arithmetic).
     */
    static Tensor permuteRope(Tensor w, int heads) {
        int rows = w.dim(0), in = w.dim(1), hd = rows / heads, half = hd / 2;
        float[] out = new float[rows * in];
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < half; i++) {
                    int dst = h * hd + j * half + i, src = h * hd + 2 * i + j;
                    w.storage().readFloats(DType.F32, w.offset() + (long) src * in, out, dst * in, in);
                }
        return Tensor.of(out, rows, in);
    }

    /** The checkpoint's own header values. */
    public Config config() { return config; }

    public Path path() { return path; }

    /** All weights under HF Llama names (read-only map, HF module order); {@code lm_head.weight} only if untied. */
    public Map<String, Tensor> tensors() { return tensors; }

    /** One weight by HF name; the error names the file and lists what exists. */
    public Tensor get(String hfName) {
        Tensor t = tensors.get(hfName);
        if (t == null)
            throw new IllegalArgumentException(path + ": no tensor '" + hfName + "' in llama2.c checkpoint (has " + tensors.size()
                    + " tensors, e.g. " + List.copyOf(tensors.keySet()).subList(0, Math.min(3, tensors.size())) + ")");
        return t;
    }

    /** The equivalent HF {@code config.json} (LlamaForCausalLM), with HF's key names. */
    public Map<String, Object> hfConfig() {
        Config c = config;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("LlamaForCausalLM"));
        m.put("model_type", "llama");
        m.put("vocab_size", c.vocabSize);
        m.put("hidden_size", c.dim);
        m.put("intermediate_size", c.hiddenDim);
        m.put("num_hidden_layers", c.nLayers);
        m.put("num_attention_heads", c.nHeads);
        m.put("num_key_value_heads", c.nKvHeads);
        m.put("head_dim", c.headDim());
        m.put("max_position_embeddings", c.seqLen);
        m.put("rms_norm_eps", 1e-5);       // llama2.c's run.c hard-codes this epsilon
        m.put("rope_theta", 10000.0);      // and this RoPE base
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", c.sharedClassifier);
        m.put("attention_bias", false);
        m.put("mlp_bias", false);
        m.put("bos_token_id", 1);
        m.put("eos_token_id", 2);
        m.put("torch_dtype", "float32");
        m.put("initializer_range", 0.02);
        m.put("use_cache", true);
        return m;
    }

    @Override
    public void close() { arena.close(); }
}
