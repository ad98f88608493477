package io.peft4j.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face {@code tokenizer.json} through DJL's binding of the Rust {@code tokenizers} library, plus the
 * sibling {@code tokenizer_config.json} (bos/eos tokens, {@code add_bos_token}, {@code chat_template}) or, failing
 * that, {@code config.json}'s {@code bos_token_id}/{@code eos_token_id}.
 *
 * <p>Offline by construction: DJL's native library ships inside its jar and is extracted once to
 * {@code ~/.djl.ai/tokenizers/} (or {@code $DJL_CACHE_DIR}); DJL would otherwise make a telemetry call (EC2 metadata
 * endpoint) on each new tokenizer and, on machines with CUDA, download a GPU build. Both are switched off by setting
 * {@code ai.djl.offline=true} and {@code OPT_OUT_TRACKING=true} before DJL is first touched, unless the user set them.
 *
 * <p>{@link #encode} never lets the tokenizer's post-processor add special tokens: BOS is prepended here when asked
 * (so {@code addBos} means the same for every tokenizer). Special tokens written in the text (as chat templates do)
 * are still recognised as single tokens.
 */
public final class HfTokenizer implements Tokenizer {
    static {
        if (System.getProperty("ai.djl.offline") == null) System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("OPT_OUT_TRACKING") == null) System.setProperty("OPT_OUT_TRACKING", "true");
    }

    private final Path file;
    private final HuggingFaceTokenizer tk;
    private final int vocabSize;
    private final int bosId, eosId;
    private final boolean addBosByDefault;
    private final String chatTemplate;               // null when the config has none
    private final String bosToken, eosToken;         // null when absent
    private final Map<String, Integer> addedTokens;  // special/added token text -> id
    private final int[] stopIds;

    private HfTokenizer(Path file, HuggingFaceTokenizer tk, JsonNode tokenizerJson, JsonNode config, JsonNode modelConfig) {
        this.file = file;
        this.tk = tk;
        this.addedTokens = new HashMap<>();
        int maxId = -1;
        for (JsonNode a : tokenizerJson.path("added_tokens")) {
            addedTokens.put(a.path("content").asText(), a.path("id").asInt());
            maxId = Math.max(maxId, a.path("id").asInt());
        }
        JsonNode vocab = tokenizerJson.path("model").path("vocab");
        int vocabMax = -1;
        if (vocab.isObject()) for (JsonNode v : vocab) vocabMax = Math.max(vocabMax, v.asInt());
        else if (vocab.isArray()) vocabMax = vocab.size() - 1; // Unigram: [[piece, score], ...]
        this.vocabSize = Math.max(maxId, vocabMax) + 1;

        this.bosToken = tokenText(config.path("bos_token"));
        this.eosToken = tokenText(config.path("eos_token"));
        int bos = bosToken != null ? tokenId(bosToken) : -1;
        int eos = eosToken != null ? tokenId(eosToken) : -1;
        if (bos < 0 && modelConfig.path("bos_token_id").isInt()) bos = modelConfig.path("bos_token_id").asInt();
        if (eos < 0 && modelConfig.path("eos_token_id").isInt()) eos = modelConfig.path("eos_token_id").asInt();
        this.bosId = bos;
        this.eosId = eos;
        // HF's LlamaTokenizer defaults add_bos_token to true; fast tokenizers without the key add what their
        // post-processor adds, which for our purposes is "BOS if it has one and the post-processor uses it".
        JsonNode addBos = config.path("add_bos_token");
        this.addBosByDefault = addBos.isBoolean() ? addBos.asBoolean()
                : bos >= 0 && tokenizerJson.path("post_processor").toString().contains(quote(bosToken));
        JsonNode ct = config.path("chat_template");
        this.chatTemplate = ct.isTextual() ? ct.asText() : ct.isArray() && !ct.isEmpty() ? ct.get(0).path("template").asText(null) : null;

        Set<Integer> stops = new LinkedHashSet<>();
        if (eos >= 0) stops.add(eos);
        for (String s : new String[] {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>", "</s>"}) {
            Integer id = addedTokens.get(s);
            if (id != null) stops.add(id);
        }
        this.stopIds = stops.stream().mapToInt(Integer::intValue).toArray();
    }

    private static String quote(String s) { return s == null ? "\u0000" : "\"" + s + "\""; }

    /** bos_token / eos_token are a string, an AddedToken object {@code {"content": ...}}, or null. */
    private static String tokenText(JsonNode n) {
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.path("content").asText();
        return null;
    }

    /** Loads {@code tokenizer.json} (a file, or a directory holding one) and its sibling configs if present. */
    public static HfTokenizer load(Path path) throws IOException {
        Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
        if (!Files.isRegularFile(file)) throw new IOException(file + ": tokenizer.json not found");
        ObjectMapper om = new ObjectMapper();
        JsonNode json;
        try {
            json = om.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        Path dir = file.toAbsolutePath().getParent();
        JsonNode config = readOptional(om, dir.resolve("tokenizer_config.json"));
        JsonNode modelConfig = readOptional(om, dir.resolve("config.json"));
        Map<String, String> options = Map.of(
                "addSpecialTokens", "false", "truncation", "false", "padding", "false", "withOverflowingTokens", "false");
        HuggingFaceTokenizer tk;
        try {
            tk = HuggingFaceTokenizer.newInstance(file, options);
        } catch (RuntimeException e) {
            throw new IOException(file + ": the tokenizers library rejected it: " + e.getMessage(), e);
        }
        return new HfTokenizer(file, tk, json, config, modelConfig);
    }

    private static JsonNode readOptional(ObjectMapper om, Path p) throws IOException {
        if (!Files.isRegularFile(p)) return om.createObjectNode();
        try {
            return om.readTree(p.toFile());
        } catch (IOException e) {
            throw new IOException(p + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- encode / decode

    @Override
    public int[] encode(String text, boolean addBos) {
        long[] raw = tk.encode(text, false, false).getIds();
        boolean bos = addBos && bosId >= 0;
        int[] out = new int[raw.length + (bos ? 1 : 0)];
        int k = 0;
        if (bos) out[k++] = bosId;
        for (long id : raw) out[k++] = (int) id;
        return out;
    }

    @Override
    public Encoding encodeWithOffsets(String text, boolean addBos) {
        ai.djl.huggingface.tokenizers.Encoding e = tk.encode(text, false, false);
        long[] raw = e.getIds();
        CharSpan[] spans = e.getCharTokenSpans();
        boolean bos = addBos && bosId >= 0;
        int n = raw.length + (bos ? 1 : 0);
        int[] ids = new int[n], s = new int[n], en = new int[n];
        int k = 0;
        if (bos) ids[k++] = bosId;
        for (int i = 0; i < raw.length; i++, k++) {
            ids[k] = (int) raw[i];
            CharSpan sp = spans != null && i < spans.length ? spans[i] : null;
            if (sp != null && sp.getStart() >= 0) { s[k] = sp.getStart(); en[k] = sp.getEnd(); }
        }
        return new Encoding(ids, s, en);
    }

    @Override
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) l[i] = checkId(ids[i]);
        return tk.decode(l, true);
    }

    /** Decodes {@code [previous, id]} and returns what {@code id} added; the whole piece when there is no previous. */
    @Override
    public String decodeNext(int previous, int id) {
        if (previous < 0) return decode(new int[] {id});
        String before = decode(new int[] {previous});
        String both = decode(new int[] {previous, id});
        return both.startsWith(before) ? both.substring(before.length()) : decode(new int[] {id});
    }

    /**
     * The usual streaming scheme (as text-generation servers do): decode the ids from a prefix offset, and emit the
     * new text once it no longer ends in U+FFFD (a byte-level character still incomplete); then slide the window.
     */
    @Override
    public StreamDecoder newStreamDecoder() {
        return new StreamDecoder() {
            private int[] ids = new int[16];
            private int n, prefixOffset, readOffset;

            @Override
            public String next(int id) {
                checkId(id);
                if (n == ids.length) ids = Arrays.copyOf(ids, n * 2);
                ids[n++] = id;
                String prefix = decode(Arrays.copyOfRange(ids, prefixOffset, readOffset));
                String full = decode(Arrays.copyOfRange(ids, prefixOffset, n));
                if (full.length() > prefix.length() && !full.endsWith("\uFFFD") && full.startsWith(prefix)) {
                    prefixOffset = readOffset;
                    readOffset = n;
                    return full.substring(prefix.length());
                }
                return "";
            }

            @Override
            public String finish() {
                String prefix = decode(Arrays.copyOfRange(ids, prefixOffset, readOffset));
                String full = decode(Arrays.copyOfRange(ids, prefixOffset, n));
                prefixOffset = readOffset = n;
                return full.startsWith(prefix) ? full.substring(prefix.length()) : full;
            }
        };
    }

    private int checkId(int id) {
        if (id < 0 || id >= vocabSize)
            throw new IllegalArgumentException(file + ": token id " + id + " out of range for vocabulary of " + vocabSize);
        return id;
    }

    // ---------------------------------------------------------------- vocabulary and config

    @Override public int vocabSize() { return vocabSize; }
    @Override public int bosId() { return bosId; }
    @Override public int eosId() { return eosId; }
    @Override public int[] stopIds() { return stopIds.clone(); }

    @Override
    public int tokenId(String token) {
        Integer id = addedTokens.get(token);
        if (id != null) return id;
        long[] ids = tk.encode(token, false, false).getIds();
        // Only a token that encodes to itself alone counts; pre-tokenizers (byte-level, metaspace) may alter text.
        if (ids.length == 1 && tk.decode(ids, false).equals(token)) return (int) ids[0];
        return -1;
    }

    /** {@code add_bos_token} from the config (or whether the post-processor adds BOS): what HF's encode would do. */
    public boolean addBosByDefault() { return addBosByDefault; }

    /** The Jinja {@code chat_template} string from {@code tokenizer_config.json}, or null. */
    public String chatTemplate() { return chatTemplate; }

    /** The BOS token's text ({@code "<s>"}, {@code "<|begin_of_text|>"}), or null. */
    public String bosToken() { return bosToken; }

    /** The EOS token's text, or null. */
    public String eosToken() { return eosToken; }

    public Path path() { return file; }

    @Override
    public void close() { tk.close(); }
}
