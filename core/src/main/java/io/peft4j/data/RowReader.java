package io.peft4j.data;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Reads the rows of a JSONL, JSON, CSV, TSV or plain-text file and hands each to a {@link Sink}. A malformed row
 * (bad JSON, not an object, wrong column count, or one the sink rejects with a {@link DataException}) fails the
 * read with the file and 1-based line, or with {@link DataConfig#skipBadRows()} is skipped and counted. Faults that
 * leave no way to find the next row (a JSON syntax error inside an array file, an unterminated CSV quote, invalid
 * UTF-8) always fail.
 */
public final class RowReader {
    private RowReader() {}

    /** Receives each row in file order; throws {@link DataException} (e.g. via {@link Row#error}) to reject it. */
    @FunctionalInterface
    public interface Sink {
        void accept(Row row);
    }

    /**
     * What a read saw.
     *
     * @param rowsAccepted rows the sink took
     * @param rowsSkipped  malformed or rejected rows skipped (only with skipBadRows)
     * @param skipReasons  the first few skip messages (file:line: what)
     */
    public record Stats(int rowsAccepted, int rowsSkipped, List<String> skipReasons) {}

    /** Field names a JSON object file may keep its rows under, when none is configured. */
    static final List<String> LIST_FIELDS = List.of("data", "rows", "examples", "instances", "records", "train");
    static final int MAX_REASONS = 10;

    /** For one JSONL line: anything after the object is an error. */
    private static final ObjectMapper LINE_MAPPER = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** For streaming a JSON file row by row (the rows are followed by more of the document). */
    private static final ObjectMapper STREAM_MAPPER = new ObjectMapper();

    /** Tracks bad rows: throws unless skipping, else counts and keeps the first messages. */
    static final class BadRows {
        final boolean skip;
        int count;
        final List<String> reasons = new ArrayList<>();

        BadRows(boolean skip) { this.skip = skip; }

        void handle(DataException e) {
            if (!skip) throw e;
            count++;
            if (reasons.size() < MAX_REASONS) reasons.add(e.getMessage());
        }
    }

    private static final class Run {
        final String file;
        final Sink sink;
        final BadRows bad;
        int accepted;

        Run(String file, Sink sink, boolean skip) { this.file = file; this.sink = sink; this.bad = new BadRows(skip); }

        void deliver(Row row) {
            try {
                sink.accept(row);
                accepted++;
            } catch (DataException e) {
                bad.handle(e);
            }
        }

        Stats stats() { return new Stats(accepted, bad.count, List.copyOf(bad.reasons)); }
    }

    /** Reads {@code file} in {@code cfg.fileFormat()} (or the one its extension implies). */
    public static Stats read(Path file, DataConfig cfg, Sink sink) throws IOException {
        FileFormat ff = cfg.fileFormat() != null ? cfg.fileFormat() : FileFormat.forPath(file);
        String name = file.toString();
        if (!Files.isRegularFile(file)) throw new NoSuchFileException(name, null, "data file not found");
        Run run = new Run(name, sink, cfg.skipBadRows());
        try {
            switch (ff) {
                case JSONL -> readJsonl(file, run);
                case JSON -> readJson(file, cfg.jsonListField(), run);
                case CSV -> readDelimited(file, ',', true, run);
                case TSV -> readDelimited(file, '\t', false, run);
                case TEXT -> readText(file, cfg.textField() != null ? cfg.textField() : "text", run);
            }
        } catch (CharacterCodingException e) {
            throw new DataException(name, 0, "not valid UTF-8 text (" + e + ")", e);
        }
        return run.stats();
    }

    private static BufferedReader utf8(Path file) throws IOException {
        InputStream in = Files.newInputStream(file);
        return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)), 1 << 16);
    }

    private static void readJsonl(Path file, Run run) throws IOException {
        try (BufferedReader r = utf8(file)) {
            int lineNo = 0;
            String line;
            while (true) {
                try {
                    line = r.readLine();
                } catch (CharacterCodingException e) {
                    throw new DataException(run.file, lineNo + 1, "not valid UTF-8 text", e);
                }
                if (line == null) break;
                lineNo++;
                if (lineNo == 1 && line.startsWith("\uFEFF")) line = line.substring(1);
                if (line.isBlank()) continue;
                JsonNode node;
                try {
                    node = LINE_MAPPER.readTree(line);
                } catch (JsonProcessingException e) {
                    run.bad.handle(new DataException(run.file, lineNo, "bad JSON at column "
                            + e.getLocation().getColumnNr() + ": " + firstLine(e.getOriginalMessage())));
                    continue;
                }
                if (!(node instanceof ObjectNode obj)) {
                    run.bad.handle(new DataException(run.file, lineNo, "row is " + Row.describe(node) + ", expected a JSON object"));
                    continue;
                }
                run.deliver(new Row(run.file, lineNo, obj));
            }
        }
    }

    private static void readJson(Path file, String listField, Run run) throws IOException {
        try (InputStream in = Files.newInputStream(file); JsonParser p = STREAM_MAPPER.createParser(in)) {
            try {
                JsonToken t = p.nextToken();
                if (t == JsonToken.START_ARRAY) {
                    readArray(p, run);
                } else if (t == JsonToken.START_OBJECT) {
                    boolean found = false;
                    List<String> seen = new ArrayList<>();
                    for (String name = p.nextFieldName(); name != null; name = p.nextFieldName()) {
                        JsonToken v = p.nextToken();
                        seen.add(name);
                        boolean wanted = !found && (listField != null ? listField.equals(name) : LIST_FIELDS.contains(name));
                        if (wanted) {
                            if (v != JsonToken.START_ARRAY)
                                throw new DataException(run.file, line(p), "field '" + name + "' should hold the list of rows but is not an array");
                            readArray(p, run);
                            found = true;
                        } else {
                            p.skipChildren();
                        }
                    }
                    if (!found)
                        throw new DataException(run.file, 1, "a JSON object with no list of rows: expected a field "
                                + (listField != null ? "'" + listField + "'" : "named one of " + LIST_FIELDS)
                                + " holding an array (fields: " + String.join(", ", seen) + "); name it with the JSON list field option");
                } else {
                    throw new DataException(run.file, 1, "expected a JSON array of row objects, or an object holding one, found "
                            + (t == null ? "an empty file" : t.asString()));
                }
                if (p.nextToken() != null) throw new DataException(run.file, line(p), "content after the end of the JSON document");
            } catch (JsonProcessingException e) {
                throw new DataException(run.file, e.getLocation() != null ? e.getLocation().getLineNr() : 0,
                        "bad JSON: " + firstLine(e.getOriginalMessage())
                                + (run.bad.skip ? " (a syntax error in a JSON file cannot be skipped; JSONL can)" : ""), e);
            }
        }
    }

    private static int line(JsonParser p) { return p.currentTokenLocation().getLineNr(); }

    private static void readArray(JsonParser p, Run run) throws IOException {
        for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
            if (t == null) throw new DataException(run.file, line(p), "the file ends inside the array");
            int lineNo = line(p);
            if (t == JsonToken.START_OBJECT) {
                ObjectNode node = p.readValueAsTree();
                run.deliver(new Row(run.file, lineNo, node));
            } else {
                String what = t == JsonToken.START_ARRAY ? "an array" : t == JsonToken.VALUE_STRING ? "a string"
                        : t == JsonToken.VALUE_NULL ? "null" : t.isNumeric() ? "a number" : t.isBoolean() ? "a boolean" : t.asString();
                p.skipChildren();
                run.bad.handle(new DataException(run.file, lineNo, "row is " + what + ", expected a JSON object"));
            }
        }
    }

    private static void readDelimited(Path file, char sep, boolean quoting, Run run) throws IOException {
        try (Reader r = utf8(file)) {
            DelimitedParser parser = new DelimitedParser(r, run.file, sep, quoting);
            List<String> header = parser.next();
            if (header == null) throw new DataException(run.file, 1, "empty file: expected a header row");
            Set<String> names = new HashSet<>();
            for (int i = 0; i < header.size(); i++) {
                String h = header.get(i).strip();
                header.set(i, h);
                if (h.isEmpty()) throw new DataException(run.file, parser.recordLine(), "header column " + (i + 1) + " has no name");
                if (!names.add(h)) throw new DataException(run.file, parser.recordLine(), "header names column '" + h + "' twice");
            }
            if (header.size() == 1 && sep == '\t' && header.getFirst().contains(","))
                throw new DataException(run.file, parser.recordLine(), "the header has no tab but has commas: is this a CSV file?");
            while (true) {
                List<String> rec;
                try {
                    rec = parser.next();
                } catch (DataException e) {
                    if (e.problem().startsWith("unterminated")) throw e; // nothing left to resume from
                    run.bad.handle(e);
                    continue;
                }
                if (rec == null) break;
                if (rec.size() != header.size()) {
                    run.bad.handle(new DataException(run.file, parser.recordLine(), "wrong column count: " + rec.size()
                            + " field(s), the header has " + header.size() + " (" + String.join(", ", header) + ")"));
                    continue;
                }
                ObjectNode node = JsonNodeFactory.instance.objectNode();
                for (int i = 0; i < rec.size(); i++) node.put(header.get(i), rec.get(i));
                run.deliver(new Row(run.file, parser.recordLine(), node));
            }
        } catch (CharacterCodingException e) {
            throw new DataException(run.file, 0, "not valid UTF-8 text", e);
        }
    }

    private static void readText(Path file, String field, Run run) throws IOException {
        String text;
        try (Reader r = utf8(file)) {
            StringBuilder sb = new StringBuilder((int) Math.min(Integer.MAX_VALUE - 8, Files.size(file)));
            char[] buf = new char[1 << 16];
            for (int n; (n = r.read(buf)) > 0; ) sb.append(buf, 0, n);
            text = sb.toString();
        }
        if (text.startsWith("\uFEFF")) text = text.substring(1);
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        node.put(field, text);
        run.deliver(new Row(run.file, 1, node));
    }

    private static String firstLine(String s) {
        if (s == null) return "malformed";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
