package io.peft4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.tokenizer.ChatTemplate;
import io.peft4j.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Reads a data file ({@link RowReader}) and turns its rows into token {@link Example}s as its {@link DataFormat}
 * says. Labels are next-token targets already shifted to the input positions (see {@link Example}):
 * <ul>
 *   <li>TEXT: each document is {@code [BOS] tokens EOS}; the documents are concatenated and cut into windows of
 *       {@code seqLen + 1} tokens with stride {@code seqLen} (inputs {@code w[0..L)}, targets {@code w[1..L]}), so
 *       every token but the first is a target exactly once and a stream of N tokens gives {@code floor((N-1)/L)}
 *       windows. The last partial window is DROPPED (counted in the report) unless {@code padLastWindow}.
 *       Without packing, each document is one example truncated to {@code seqLen + 1} tokens. A row without the
 *       text field but with {@code "segments": [{"text": "...", "modality": 0 | 1 | "text" | "image"}, ...]} is a
 *       mixed-modality document: each segment is encoded on its own (as LLaVA splits a prompt around its image
 *       tokens) and its tokens carry the segment's modality tag (0 = language, 1 = vision; BOS and EOS are 0), kept
 *       through packing into {@link Example#modalities()} and the batches' tags (for MM-LoRA).</li>
 *   <li>COMPLETION: the text {@code promptTemplate(prompt) + completion} is encoded with offsets; tokens that overlap
 *       the completion's characters, and the EOS appended after it, are targets. Truncated to {@code seqLen}.</li>
 *   <li>CHAT: the messages are rendered with a {@link ChatTemplate}; tokens overlapping the assistant spans (content
 *       plus end-of-turn marker) are targets. Truncated to {@code seqLen}.</li>
 *   <li>CLASSIFICATION: {@code [BOS] tokens} truncated to {@code seqLen}, plus the label index. Integer labels (JSON
 *       integers, or integer strings as CSV/TSV give them) are used as indices, with names "0".."max"; otherwise
 *       every label is a name and the names are indexed in SORTED order (String order), so the mapping does not
 *       depend on row order. Explicit label names fix the mapping instead.</li>
 * </ul>
 * Examples left with no target (e.g. a prompt longer than seqLen) are dropped and counted.
 */
public final class DataLoader {
    private DataLoader() {}

    private static final int MAX_CLASSES = 100_000;
    /** The TEXT row field holding a mixed-modality document as {text, modality} segments. */
    static final String SEGMENTS = "segments";
    private static final Pattern INTEGER = Pattern.compile("[-+]?\\d{1,9}");

    /** Loads {@code file}; for classification the label names come from the config or the data. */
    public static Dataset load(Path file, DataConfig cfg, Tokenizer tok) throws IOException {
        return load(file, cfg, tok, null);
    }

    /**
     * Loads {@code file}; for classification, {@code labelNames} (when not null) fixes the label mapping, as an eval
     * file must use its training file's mapping.
     */
    public static Dataset load(Path file, DataConfig cfg, Tokenizer tok, List<String> labelNames) throws IOException {
        FileFormat ff = cfg.fileFormat() != null ? cfg.fileFormat() : FileFormat.forPath(file);
        if (ff == FileFormat.TEXT && cfg.format() != DataFormat.TEXT)
            throw new DataException(file.toString(), 0, "a plain-text file holds one document and can only be read as "
                    + "TEXT data, not " + cfg.format());
        Converter c = switch (cfg.format()) {
            case TEXT -> new TextConverter(cfg, tok);
            case COMPLETION -> new CompletionConverter(cfg, tok);
            case CHAT -> new ChatConverter(cfg, tok);
            case CLASSIFICATION -> new ClassConverter(cfg, tok, labelNames != null ? labelNames : cfg.labelNames());
        };
        RowReader.Stats stats = RowReader.read(file, cfg, row -> {
            if (cfg.filterField() != null && !matches(row, cfg.filterField(), cfg.filterValue())) {
                c.filtered++;
                return;
            }
            c.accept(row);
        });
        RowReader.BadRows late = new RowReader.BadRows(cfg.skipBadRows());
        List<Example> examples = c.finish(late);
        List<String> reasons = new ArrayList<>(stats.skipReasons());
        for (String r : late.reasons) if (reasons.size() < RowReader.MAX_REASONS) reasons.add(r);
        long tokens = 0, targets = 0;
        for (Example e : examples) {
            tokens += e.length();
            targets += e.classLabel() >= 0 ? 1 : e.targetCount();
        }
        LoadReport report = new LoadReport(file.toString(), stats.rowsAccepted() - c.filtered - late.count,
                stats.rowsSkipped() + late.count, List.copyOf(reasons), c.filtered, c.empty, examples.size(),
                c.truncated, c.noTarget, tokens, targets, c.droppedTail);
        return new Dataset(examples, c.labelNames(), report);
    }

    /**
     * Training and held-out data: {@code evalFile} when given (read with the same config and, for classification,
     * the training file's label mapping), else the LAST {@code evalFraction} of the training file's examples
     * ({@link Dataset#splitLast}); a fraction of 0 and no file give an empty eval set.
     */
    public static Dataset.Split loadSplit(Path trainFile, Path evalFile, double evalFraction, DataConfig cfg,
                                          Tokenizer tok) throws IOException {
        Dataset train = load(trainFile, cfg, tok);
        if (evalFile == null) return train.splitLast(evalFraction);
        if (evalFraction > 0) throw new IllegalArgumentException("give an eval file or an eval fraction, not both");
        return new Dataset.Split(train, load(evalFile, cfg, tok, train.labelNames()));
    }

    /**
     * A pad id for batching: the tokenizer's pad token ({@code <pad>}, {@code [PAD]}, {@code <|endoftext|>}) if it
     * has one, else EOS, else 0. Padded positions carry no loss, so this only has to be a valid id.
     */
    public static int defaultPadId(Tokenizer tok) {
        for (String t : List.of("<pad>", "[PAD]", "<|pad|>", "<|endoftext|>")) {
            int id = tok.tokenId(t);
            if (id >= 0) return id;
        }
        return Math.max(0, tok.eosId());
    }

    private static boolean matches(Row row, String field, String value) {
        JsonNode n = row.fields().get(field);
        if (n == null || n.isNull() || n.isContainerNode()) return false;
        return value.equals(n.asText());
    }

    static boolean addBos(DataConfig cfg, Tokenizer tok) {
        if (cfg.addBos() != null) return cfg.addBos();
        // GPT-2 style tokenizers use one token for both: a BOS would just repeat the separating EOS.
        return tok.bosId() >= 0 && tok.bosId() != tok.eosId();
    }

    // ---------------------------------------------------------------- converters

    /** Turns rows into examples; counts what it leaves out. */
    private abstract static class Converter {
        final DataConfig cfg;
        final Tokenizer tok;
        final List<Example> out = new ArrayList<>();
        int filtered, empty, truncated, noTarget, droppedTail;

        Converter(DataConfig cfg, Tokenizer tok) { this.cfg = cfg; this.tok = tok; }

        /** Converts one row, or throws {@link Row#error} to reject it. */
        abstract void accept(Row row);

        /** The examples, once all rows are in; late row errors go to {@code bad}. */
        List<Example> finish(RowReader.BadRows bad) { return out; }

        List<String> labelNames() { return null; }

        float weight(Row row) {
            if (cfg.weightField() == null || !row.has(cfg.weightField())) return 1f;
            JsonNode w = row.get(cfg.weightField());
            double v;
            if (w.isNumber()) v = w.doubleValue();
            else if (w.isTextual()) {
                try {
                    v = Double.parseDouble(w.textValue().strip());
                } catch (NumberFormatException e) {
                    throw row.error("weight field '" + cfg.weightField() + "' is '" + w.textValue() + "', expected a number");
                }
            } else throw row.error("weight field '" + cfg.weightField() + "' is " + Row.describe(w) + ", expected a number");
            if (!(v >= 0) || Double.isInfinite(v)) throw row.error("weight " + v + " is not a finite number >= 0");
            return (float) v;
        }

        /**
         * Adds the example for token sequence {@code seq} where {@code target[i]} says whether {@code seq[i]} is
         * learned: inputs {@code seq[0..m-1)}, labels shifted by one, cut to {@code seqLen + 1} tokens.
         */
        void addShifted(int[] seq, boolean[] target, float weight) { addShifted(seq, target, weight, null); }

        /** As {@link #addShifted(int[], boolean[], float)}, with the modality tag of each token of {@code seq} (or null). */
        void addShifted(int[] seq, boolean[] target, float weight, int[] modalities) {
            int m = Math.min(seq.length, cfg.seqLen() + 1);
            if (seq.length > m) truncated++;
            if (m < 2) { noTarget++; return; }
            int[] ids = Arrays.copyOf(seq, m - 1);
            int[] labels = new int[m - 1];
            boolean any = false;
            for (int t = 0; t < m - 1; t++) {
                boolean learn = target[t + 1];
                labels[t] = learn ? seq[t + 1] : Example.IGNORE;
                any |= learn;
            }
            if (!any) { noTarget++; return; }
            out.add(new Example(ids, labels, -1, weight, modalities == null ? null : Arrays.copyOf(modalities, m - 1)));
        }
    }

    /** TEXT: documents into packed windows (or one example each). */
    private static final class TextConverter extends Converter {
        private final String field;
        private final boolean bos;
        private int[] stream = new int[1 << 16]; // [streamLen] concatenated documents
        private int[] modStream;                 // [stream.length] modality of each stream token, from the first segmented document on
        private int streamLen;
        private float streamWeight = Float.NaN;

        TextConverter(DataConfig cfg, Tokenizer tok) {
            super(cfg, tok);
            field = cfg.textField() != null ? cfg.textField() : "text";
            bos = addBos(cfg, tok);
        }

        @Override
        void accept(Row row) {
            int[] ids, mods = null;
            float w;
            if (!row.has(field) && row.has(SEGMENTS)) {
                int[][] seg = segments(row, tok, bos);
                w = weight(row);
                if (seg == null) { empty++; return; }
                ids = seg[0];
                mods = seg[1];
            } else {
                String text = row.string(field);
                w = weight(row);
                if (text.isEmpty()) { empty++; return; }
                ids = tok.encode(text, bos);
            }
            int n = ids.length + (tok.eosId() >= 0 ? 1 : 0);
            int[] doc = Arrays.copyOf(ids, n);
            if (tok.eosId() >= 0) doc[n - 1] = tok.eosId();
            int[] docMods = mods == null ? null : Arrays.copyOf(mods, n);   // EOS: modality 0
            if (!cfg.packing()) {
                boolean[] all = new boolean[n];
                Arrays.fill(all, true);
                addShifted(doc, all, w, docMods);
                return;
            }
            // A packed window mixes documents, so per-document weights cannot apply: require them all equal.
            if (cfg.weightField() != null) {
                if (Float.isNaN(streamWeight)) streamWeight = w;
                else if (w != streamWeight) throw row.error("packed TEXT data cannot carry per-document weights (this row has "
                        + w + ", earlier rows " + streamWeight + "); turn packing off");
            }
            if (streamLen + n > stream.length) {
                stream = Arrays.copyOf(stream, Math.max(streamLen + n, stream.length * 2));
                if (modStream != null) modStream = Arrays.copyOf(modStream, stream.length);
            }
            System.arraycopy(doc, 0, stream, streamLen, n);
            if (docMods != null) {
                if (modStream == null) modStream = new int[stream.length];      // earlier documents: modality 0
                System.arraycopy(docMods, 0, modStream, streamLen, n);
            }
            streamLen += n;
        }

        @Override
        List<Example> finish(RowReader.BadRows bad) {
            if (!cfg.packing()) return out;
            int L = cfg.seqLen();
            float w = Float.isNaN(streamWeight) ? 1f : streamWeight;
            int windows = streamLen >= 2 ? (streamLen - 1) / L : 0;
            for (int k = 0; k < windows; k++) out.add(window(k * L, L, w));
            int tail = streamLen >= 2 ? streamLen - 1 - windows * L : 0;
            if (tail > 0) {
                if (cfg.padLastWindow()) out.add(window(windows * L, tail, w));
                else droppedTail = tail;
            }
            stream = null;
            modStream = null;
            return out;
        }

        private Example window(int start, int len, float w) {
            return new Example(Arrays.copyOfRange(stream, start, start + len),
                    Arrays.copyOfRange(stream, start + 1, start + 1 + len), -1, w,
                    modStream == null ? null : Arrays.copyOfRange(modStream, start, start + len));
        }
    }

    /**
     * A {@value #SEGMENTS} row as {ids, modalities}: BOS (modality 0) when wanted, then each segment's text encoded on
     * its own, its tokens tagged with the segment's modality; null when no segment has text.
     */
    static int[][] segments(Row row, Tokenizer tok, boolean bos) {
        JsonNode list = row.get(SEGMENTS);
        if (!list.isArray())
            throw row.error("field '" + SEGMENTS + "' is " + Row.describe(list) + ", expected a list of {\"text\", \"modality\"} objects");
        int[] ids = new int[64], mods = new int[64];
        int n = 0;
        boolean any = false;
        if (bos && tok.bosId() >= 0) ids[n++] = tok.bosId();
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof ObjectNode seg) || !seg.has("text") || !seg.has("modality"))
                throw row.error("segment " + i + " must be an object with 'text' and 'modality'");
            JsonNode text = seg.get("text");
            if (!text.isTextual()) throw row.error("segment " + i + " text is " + Row.describe(text) + ", expected a string");
            int modality = modality(row, i, seg.get("modality"));
            if (text.textValue().isEmpty()) continue;
            int[] enc = tok.encode(text.textValue(), false);
            if (n + enc.length > ids.length) {
                ids = Arrays.copyOf(ids, Math.max(n + enc.length, ids.length * 2));
                mods = Arrays.copyOf(mods, ids.length);
            }
            System.arraycopy(enc, 0, ids, n, enc.length);
            Arrays.fill(mods, n, n + enc.length, modality);
            n += enc.length;
            any = true;
        }
        return any ? new int[][] {Arrays.copyOf(ids, n), Arrays.copyOf(mods, n)} : null;
    }

    /** A segment's modality: an integer >= 0, or "text"/"language" (0), "image"/"vision" (1). */
    private static int modality(Row row, int i, JsonNode m) {
        if (m.isIntegralNumber() && m.intValue() >= 0 && m.canConvertToInt()) return m.intValue();
        if (m.isTextual()) {
            switch (m.textValue().toLowerCase(java.util.Locale.ROOT)) {
                case "text", "language" -> { return 0; }
                case "image", "vision" -> { return 1; }
                default -> { }
            }
        }
        throw row.error("segment " + i + " modality is " + Row.describe(m) + ", expected an integer >= 0 or text/language/image/vision");
    }

    /** COMPLETION: prompt + completion, loss on the completion and its EOS. */
    private static final class CompletionConverter extends Converter {
        private final boolean bos;

        CompletionConverter(DataConfig cfg, Tokenizer tok) {
            super(cfg, tok);
            bos = addBos(cfg, tok);
        }

        @Override
        void accept(Row row) {
            String prompt, completion;
            if (cfg.promptField() != null) {
                prompt = row.string(cfg.promptField());
                completion = row.string(cfg.completionField());
            } else if (row.has("prompt") || row.has("completion")) {
                prompt = row.string("prompt");
                completion = row.string("completion");
            } else if (row.has("instruction") || row.has("output")) {
                String instruction = row.string("instruction"), input = row.optString("input");
                prompt = input.isEmpty() ? instruction : instruction + "\n\n" + input;
                completion = row.string("output");
            } else if (row.has("question") || row.has("answer")) {
                prompt = row.string("question");
                completion = row.string("answer");
            } else {
                throw row.error("no completion fields: expected prompt+completion, instruction(+input)+output or "
                        + "question+answer (the row has: " + row.fieldNames() + ")");
            }
            String head = cfg.promptTemplate().replace("{prompt}", prompt);
            int from = head.length();
            Tokenizer.Encoding enc = tok.encodeWithOffsets(head + completion, bos);
            int n = enc.size();
            boolean eos = tok.eosId() >= 0;
            int[] seq = Arrays.copyOf(enc.ids(), n + (eos ? 1 : 0));
            boolean[] target = new boolean[seq.length];
            for (int i = 0; i < n; i++) {
                boolean hasText = enc.ends()[i] > enc.starts()[i];
                // A token with no source text inside the completion (some tokenizers emit such pieces) belongs to it.
                target[i] = hasText ? enc.ends()[i] > from : i > 0 && target[i - 1];
            }
            if (eos) { seq[n] = tok.eosId(); target[n] = true; }
            addShifted(seq, target, weight(row));
        }
    }

    /** CHAT: a rendered conversation, loss on the assistant spans. */
    private static final class ChatConverter extends Converter {
        private final ChatTemplate template;

        ChatConverter(DataConfig cfg, Tokenizer tok) {
            super(cfg, tok);
            template = cfg.chatFormat() != null ? ChatTemplate.byName(cfg.chatFormat()) : ChatTemplate.forTokenizer(tok);
        }

        @Override
        void accept(Row row) {
            JsonNode list = row.get(cfg.messagesField());
            if (!list.isArray()) throw row.error("field '" + cfg.messagesField() + "' is " + Row.describe(list) + ", expected a list of messages");
            if (list.isEmpty()) { empty++; return; }
            List<ChatTemplate.Message> messages = new ArrayList<>(list.size());
            for (int i = 0; i < list.size(); i++) messages.add(message(row, i, list.get(i)));
            ChatTemplate.Rendered r;
            try {
                r = template.render(messages, false);
            } catch (IllegalArgumentException e) {
                throw row.error(e.getMessage());
            }
            Tokenizer.Encoding enc = tok.encodeWithOffsets(r.text(), false);
            boolean[] mask = r.assistantMask(enc);
            // The mask never counts tokens without source text; one between two assistant tokens is part of the turn.
            for (int i = 1; i + 1 < mask.length; i++)
                if (!mask[i] && enc.starts()[i] == enc.ends()[i] && mask[i - 1] && mask[i + 1]) mask[i] = true;
            addShifted(enc.ids(), mask, weight(row));
        }

        /** {role, content}, or ShareGPT's {from, value} with human/gpt roles. */
        private static ChatTemplate.Message message(Row row, int i, JsonNode m) {
            if (!(m instanceof ObjectNode o)) throw row.error("message " + i + " is " + Row.describe(m) + ", expected an object");
            String roleKey = o.has("role") ? "role" : o.has("from") ? "from" : null;
            String contentKey = o.has("content") ? "content" : o.has("value") ? "value" : null;
            if (roleKey == null || contentKey == null)
                throw row.error("message " + i + " needs 'role' and 'content' (or 'from' and 'value')");
            JsonNode role = o.get(roleKey), content = o.get(contentKey);
            if (!role.isTextual()) throw row.error("message " + i + " " + roleKey + " is " + Row.describe(role) + ", expected a string");
            if (!content.isTextual()) throw row.error("message " + i + " " + contentKey + " is " + Row.describe(content) + ", expected a string");
            String r = switch (role.textValue()) {
                case "human", "user" -> "user";
                case "gpt", "assistant", "model", "bot" -> "assistant";
                case "system" -> "system";
                default -> throw row.error("message " + i + " has role '" + role.textValue() + "' (expected system, user or assistant)");
            };
            return new ChatTemplate.Message(r, content.textValue());
        }
    }

    /** CLASSIFICATION: text tokens and a label index, resolved once all labels are seen. */
    private static final class ClassConverter extends Converter {
        private final boolean bos;
        private final List<String> fixedNames; // null = derive from the data
        private final List<Pending> pending = new ArrayList<>();
        private List<String> names;

        private record Pending(Row row, int[] ids, JsonNode label, float weight) {}

        ClassConverter(DataConfig cfg, Tokenizer tok, List<String> fixedNames) {
            super(cfg, tok);
            bos = addBos(cfg, tok);
            this.fixedNames = fixedNames;
        }

        @Override
        void accept(Row row) {
            String field = cfg.textField() != null ? cfg.textField()
                    : !row.has("text") && row.has("sentence") ? "sentence" : "text";
            String text = row.string(field);
            JsonNode label = row.get(cfg.labelField());
            if (!(label.isIntegralNumber() || label.isTextual() || label.isBoolean()))
                throw row.error("label field '" + cfg.labelField() + "' is " + Row.describe(label) + ", expected an integer or a string");
            int[] ids = tok.encode(text, bos);
            if (ids.length == 0) throw row.error("text field '" + field + "' is empty (no tokens to classify)");
            if (ids.length > cfg.seqLen()) { ids = Arrays.copyOf(ids, cfg.seqLen()); truncated++; }
            // Keep only the location: the row's other fields are not needed any more.
            pending.add(new Pending(new Row(row.file(), row.line(), null), ids, label, weight(row)));
        }

        private static boolean integral(JsonNode l) {
            return l.isIntegralNumber() || (l.isTextual() && INTEGER.matcher(l.textValue().strip()).matches());
        }

        private static long asLong(JsonNode l) {
            return l.isIntegralNumber() ? l.longValue() : Long.parseLong(l.textValue().strip());
        }

        @Override
        List<Example> finish(RowReader.BadRows bad) {
            if (fixedNames != null) {
                names = fixedNames;
            } else if (pending.stream().allMatch(p -> integral(p.label))) {
                long max = -1;
                Pending top = null;
                for (Pending p : pending) if (asLong(p.label) > max) { max = asLong(p.label); top = p; }
                if (max > MAX_CLASSES) throw top.row.error("label " + max + " is too large to be a class index (over "
                        + MAX_CLASSES + "): give the label names");
                List<String> n = new ArrayList<>();
                for (int i = 0; i <= max; i++) n.add(Integer.toString(i));
                names = n;
            } else {
                TreeSet<String> set = new TreeSet<>();
                for (Pending p : pending) set.add(p.label.asText());
                names = List.copyOf(set);
            }
            boolean byName = fixedNames == null && !names.isEmpty() && pending.stream().anyMatch(p -> !integral(p.label));
            for (Pending p : pending) {
                try {
                    out.add(Example.classification(p.ids, index(p, byName), p.weight));
                } catch (DataException e) {
                    bad.handle(e);
                }
            }
            pending.clear();
            return out;
        }

        private int index(Pending p, boolean byName) {
            JsonNode l = p.label;
            if (byName || fixedNames != null) {
                int i = names.indexOf(l.asText());
                if (i >= 0) return i;
                if (byName) throw p.row.error("label '" + l.asText() + "' is not a known name"); // cannot happen: names come from the data
            }
            if (integral(l)) {
                long v = asLong(l);
                if (v >= 0 && v < names.size()) return (int) v;
                throw p.row.error("label " + v + " is out of range: " + (fixedNames != null
                        ? "there are " + names.size() + " label names " + names
                        : "labels must be >= 0"));
            }
            throw p.row.error("label '" + l.asText() + "' is not one of the label names " + names);
        }

        @Override
        List<String> labelNames() { return names; }
    }
}
