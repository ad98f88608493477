package io.peft4j.unlearn;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Builds a speaker-classification dataset from tiny Shakespeare (or any play text whose speeches start with a
 * {@code NAME:} line and end at a blank line): one row per speech, {@code {"text": speech, "label": NAME}}, for the
 * {@code top} speakers with the most speeches. Every speaker is capped at the speech count of the {@code top}-th one,
 * taking evenly spaced speeches, so the classes are balanced and chance is {@code 1/top}; every {@code testEvery}-th
 * kept speech of each speaker goes to the test file. Rows are interleaved across speakers (round robin, in text
 * order), so no slice of a file is one class. Deterministic: no randomness.
 *
 * <p>Run {@code java -cp peft4j.jar io.peft4j.unlearn.SpeakerLines input.txt OUT_DIR [top] [testEvery]}: writes
 * {@code OUT_DIR/train.jsonl} and {@code OUT_DIR/test.jsonl} (derived data: generate, do not commit).
 */
public final class SpeakerLines {
    private SpeakerLines() {}

    private static final Pattern HEADER = Pattern.compile("^([A-Z](?:[A-Za-z' ]*[A-Za-z])?):$");

    /** One speech. */
    public record Speech(String speaker, String text) {}

    /** The two files' rows. */
    public record Split(List<Speech> train, List<Speech> test, List<String> speakers) {}

    /** All speeches of a play text, in order; a header line is {@code NAME:} alone on its line. */
    public static List<Speech> speeches(String text) {
        List<Speech> out = new ArrayList<>();
        String speaker = null;
        StringBuilder sb = new StringBuilder();
        for (String line : text.split("\n", -1)) {
            var m = HEADER.matcher(line.strip());
            if (speaker == null && m.matches()) {
                speaker = m.group(1);
                sb.setLength(0);
            } else if (speaker != null && line.isBlank()) {
                if (!sb.isEmpty()) out.add(new Speech(speaker, sb.toString()));
                speaker = null;
            } else if (speaker != null) {
                if (!sb.isEmpty()) sb.append('\n');
                sb.append(line.strip());
            }
        }
        if (speaker != null && !sb.isEmpty()) out.add(new Speech(speaker, sb.toString()));
        return out;
    }

    /** The balanced train/test split of the {@code top} most frequent speakers (ties broken by name). */
    public static Split build(String text, int top, int testEvery) {
        if (top < 2) throw new IllegalArgumentException("need at least 2 speakers, got " + top);
        if (testEvery < 2) throw new IllegalArgumentException("testEvery must be >= 2, got " + testEvery);
        Map<String, List<String>> by = new LinkedHashMap<>();
        for (Speech s : speeches(text)) by.computeIfAbsent(s.speaker(), k -> new ArrayList<>()).add(s.text());
        List<String> speakers = by.keySet().stream()
                .sorted(Comparator.comparingInt((String k) -> -by.get(k).size()).thenComparing(k -> k)).limit(top).toList();
        if (speakers.size() < top) throw new IllegalArgumentException("the text has only " + speakers.size() + " speakers, fewer than " + top);
        int cap = by.get(speakers.getLast()).size();
        List<List<Speech>> train = new ArrayList<>(), test = new ArrayList<>();
        for (String sp : speakers) {
            List<String> all = by.get(sp);
            List<Speech> tr = new ArrayList<>(), te = new ArrayList<>();
            for (int i = 0; i < cap; i++) {
                Speech s = new Speech(sp, all.get((int) ((long) i * all.size() / cap)));    // evenly spaced
                (i % testEvery == testEvery - 1 ? te : tr).add(s);
            }
            train.add(tr);
            test.add(te);
        }
        return new Split(interleave(train), interleave(test), speakers);
    }

    private static List<Speech> interleave(List<List<Speech>> lists) {
        List<Speech> out = new ArrayList<>();
        for (int i = 0; ; i++) {
            boolean any = false;
            for (List<Speech> l : lists) if (i < l.size()) { out.add(l.get(i)); any = true; }
            if (!any) return out;
        }
    }

    /** Writes {@code dir/train.jsonl} and {@code dir/test.jsonl}; returns the split. */
    public static Split write(Path input, Path dir, int top, int testEvery) throws IOException {
        Split s = build(Files.readString(input, StandardCharsets.UTF_8), top, testEvery);
        Files.createDirectories(dir);
        writeJsonl(dir.resolve("train.jsonl"), s.train());
        writeJsonl(dir.resolve("test.jsonl"), s.test());
        return s;
    }

    private static void writeJsonl(Path file, List<Speech> rows) throws IOException {
        ObjectMapper json = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (Speech r : rows) {
            ObjectNode o = json.createObjectNode().put("text", r.text()).put("label", r.speaker());
            sb.append(o).append('\n');
        }
        Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
    }

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: SpeakerLines INPUT.txt OUT_DIR [top=6] [testEvery=5]");
            System.exit(2);
        }
        try {
            Split s = write(Path.of(args[0]), Path.of(args[1]), args.length > 2 ? Integer.parseInt(args[2]) : 6,
                    args.length > 3 ? Integer.parseInt(args[3]) : 5);
            System.out.println("speakers " + s.speakers() + ": " + s.train().size() + " train rows, " + s.test().size() + " test rows in " + args[1]);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
