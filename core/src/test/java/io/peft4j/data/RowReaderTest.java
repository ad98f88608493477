package io.peft4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class RowReaderTest {
    @TempDir Path dir;

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content, StandardCharsets.UTF_8);
        return p;
    }

    private static DataConfig cfg(boolean skip) {
        return DataConfig.builder(DataFormat.TEXT, 8).optSkipBadRows(skip).build();
    }

    private static List<Row> rows(Path file, DataConfig cfg) throws IOException {
        List<Row> out = new ArrayList<>();
        RowReader.read(file, cfg, out::add);
        return out;
    }

    private static DataException fails(Path file, DataConfig cfg) {
        return assertThrows(DataException.class, () -> RowReader.read(file, cfg, r -> {}));
    }

    // ---------------------------------------------------------------- JSONL

    @Test
    void jsonlUnicodeBlankLinesAndLineNumbers() throws IOException {
        Path f = write("a.jsonl", "\uFEFF{\"text\": \"h\u00e9llo \u4e16\u754c \\ud83d\\ude00\"}\n\n   \n{\"text\": \"tab\\there\", \"n\": 3}\r\n{\"text\":\"x\"}");
        List<Row> rows = rows(f, cfg(false));
        assertEquals(3, rows.size());
        assertEquals("h\u00e9llo \u4e16\u754c \uD83D\uDE00", rows.get(0).string("text"));
        assertEquals("tab\there", rows.get(1).string("text"));
        assertEquals(List.of(1, 4, 5), rows.stream().map(Row::line).toList());
    }

    @Test
    void jsonlMalformedRowsNameFileAndLine() throws IOException {
        Path bad = write("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n");
        DataException e = fails(bad, cfg(false));
        assertEquals(3, e.line());
        assertTrue(e.getMessage().startsWith(bad + ":3: bad JSON"), e.getMessage());

        Path arr = write("arr.jsonl", "{\"text\": \"ok\"}\n[1, 2]\n");
        e = fails(arr, cfg(false));
        assertEquals(2, e.line());
        assertTrue(e.problem().contains("an array, expected a JSON object"), e.getMessage());

        Path trailing = write("trail.jsonl", "{\"text\": \"a\"} {\"text\": \"b\"}\n");
        assertEquals(1, fails(trailing, cfg(false)).line());
    }

    @Test
    void jsonlSkipBadRowsCounts() throws IOException {
        Path f = write("mixed.jsonl", "{\"text\": \"a\"}\nnot json\n{\"text\": \"b\"}\n42\n{\"text\": \"c\"}\n");
        List<Row> got = new ArrayList<>();
        RowReader.Stats s = RowReader.read(f, cfg(true), got::add);
        assertEquals(3, s.rowsAccepted());
        assertEquals(2, s.rowsSkipped());
        assertEquals(2, s.skipReasons().size());
        assertTrue(s.skipReasons().get(0).startsWith(f + ":2:"), s.skipReasons().toString());
        assertTrue(s.skipReasons().get(1).startsWith(f + ":4:"), s.skipReasons().toString());
        assertEquals(List.of("a", "b", "c"), got.stream().map(r -> r.string("text")).toList());
    }

    @Test
    void sinkRejectionsAreSkippedOrFatal() throws IOException {
        Path f = write("s.jsonl", "{\"text\": \"a\"}\n{\"other\": 1}\n{\"text\": 5}\n");
        DataException e = assertThrows(DataException.class, () -> RowReader.read(f, cfg(false), r -> r.string("text")));
        assertEquals(2, e.line());
        assertTrue(e.problem().contains("missing field 'text'") && e.problem().contains("other"), e.getMessage());
        RowReader.Stats s = RowReader.read(f, cfg(true), r -> r.string("text"));
        assertEquals(1, s.rowsAccepted());
        assertEquals(2, s.rowsSkipped());
        assertTrue(s.skipReasons().get(1).contains(":3: field 'text' is an integer (5), expected a string"), s.skipReasons().toString());
    }

    @Test
    void invalidUtf8IsAnErrorWithTheLine() throws IOException {
        Path f = dir.resolve("bin.jsonl");
        byte[] good = "{\"text\": \"a\"}\n".getBytes(StandardCharsets.UTF_8);
        byte[] bad = {'{', '"', 't', '"', ':', '"', (byte) 0xC3, (byte) 0x28, '"', '}', '\n'};
        byte[] all = new byte[good.length + bad.length];
        System.arraycopy(good, 0, all, 0, good.length);
        System.arraycopy(bad, 0, all, good.length, bad.length);
        Files.write(f, all);
        DataException e = fails(f, cfg(true));
        assertTrue(e.getMessage().contains("UTF-8"), e.getMessage());
    }

    // ---------------------------------------------------------------- JSON

    @Test
    void jsonArrayWithElementLines() throws IOException {
        Path f = write("a.json", "[\n  {\"text\": \"one\"},\n\n  {\"text\": \"two \u00fc\",\n   \"x\": [1]},\n  {\"text\": \"three\"}\n]\n");
        List<Row> rows = rows(f, cfg(false));
        assertEquals(List.of("one", "two \u00fc", "three"), rows.stream().map(r -> r.string("text")).toList());
        assertEquals(List.of(2, 4, 6), rows.stream().map(Row::line).toList());
    }

    @Test
    void jsonObjectWithListField() throws IOException {
        Path f = write("o.json", "{\"version\": 2, \"meta\": {\"rows\": 0},\n \"data\": [{\"text\": \"a\"}, {\"text\": \"b\"}], \"tail\": true}");
        assertEquals(2, rows(f, cfg(false)).size());
        Path g = write("g.json", "{\"items2\": [{\"text\": \"a\"}]}");
        DataException e = fails(g, cfg(false));
        assertTrue(e.problem().contains("items2") && e.problem().contains("no list of rows"), e.getMessage());
        DataConfig named = DataConfig.builder(DataFormat.TEXT, 8).optJsonListField("items2").build();
        assertEquals(1, rows(g, named).size());
    }

    @Test
    void jsonMalformed() throws IOException {
        Path syntax = write("s.json", "[\n{\"text\": \"a\"},\n{\"text\": \"b\",,}\n]");
        DataException e = fails(syntax, cfg(true));
        assertEquals(3, e.line(), e.getMessage());
        assertTrue(e.problem().startsWith("bad JSON"), e.getMessage());

        Path scalar = write("sc.json", "[\n{\"text\": \"a\"},\n\"just a string\",\n{\"text\": \"b\"}\n]");
        e = fails(scalar, cfg(false));
        assertEquals(3, e.line());
        List<Row> got = new ArrayList<>();
        RowReader.Stats st = RowReader.read(scalar, cfg(true), got::add);
        assertEquals(2, got.size());
        assertEquals(1, st.rowsSkipped());

        assertEquals(1, fails(write("n.json", "42"), cfg(false)).line());
        assertTrue(fails(write("t.json", "[{\"text\": \"a\"}] [1]"), cfg(false)).problem().contains("after the end"));
    }

    // ---------------------------------------------------------------- CSV / TSV

    @Test
    void csvQuotingPerRfc4180() throws IOException {
        String csv = "text,label\r\n"
                + "\"hello, world\",1\r\n"
                + "\"she said \"\"hi\"\"\",0\r\n"
                + "\r\n"
                + "\"two\nlines\",2\n"
                + "plain \u00e9\u00e8 \"inch\",3\n"
                + "\"\",4\n"
                + "last,5";
        Path f = write("q.csv", csv);
        List<Row> rows = rows(f, cfg(false));
        assertEquals(List.of("hello, world", "she said \"hi\"", "two\nlines", "plain \u00e9\u00e8 \"inch\"", "", "last"),
                rows.stream().map(r -> r.string("text")).toList());
        assertEquals(List.of(2, 3, 5, 7, 8, 9), rows.stream().map(Row::line).toList());
        assertEquals("2", rows.get(2).string("label"));
    }

    @Test
    void csvMalformedRows() throws IOException {
        Path cols = write("c.csv", "text,label\na,1\nb,2,extra\n\"c,d\",3\n");
        DataException e = fails(cols, cfg(false));
        assertEquals(3, e.line());
        assertTrue(e.problem().contains("wrong column count: 3 field(s), the header has 2"), e.getMessage());

        Path after = write("after.csv", "text,label\n\"a\"x,1\n\"multi\nline\",2\nb,3\n");
        e = fails(after, cfg(false));
        assertEquals(2, e.line());
        assertTrue(e.problem().contains("after the closing quote"), e.getMessage());
        List<Row> got = new ArrayList<>();
        RowReader.Stats s = RowReader.read(after, cfg(true), got::add);
        assertEquals(1, s.rowsSkipped());
        assertEquals(List.of("multi\nline", "b"), got.stream().map(r -> r.string("text")).toList());
        assertEquals(List.of(3, 5), got.stream().map(Row::line).toList());

        Path open = write("open.csv", "text,label\na,1\n\"never closed,2\nb,3\n");
        e = fails(open, cfg(true));
        assertEquals(3, e.line());
        assertTrue(e.problem().contains("unterminated"), e.getMessage());

        assertTrue(fails(write("dup.csv", "text,text\na,b\n"), cfg(false)).problem().contains("twice"));
        assertEquals(1, fails(write("empty.csv", ""), cfg(false)).line());
    }

    @Test
    void csvSkipBadRowsCounts() throws IOException {
        Path f = write("s.csv", "text,label\na,1\nb\nc,3\nd,4,5\ne,5\n");
        List<Row> got = new ArrayList<>();
        RowReader.Stats s = RowReader.read(f, cfg(true), got::add);
        assertEquals(3, got.size());
        assertEquals(2, s.rowsSkipped());
        assertTrue(s.skipReasons().get(0).startsWith(f + ":3:"));
        assertTrue(s.skipReasons().get(1).startsWith(f + ":5:"));
    }

    @Test
    void tsvHasNoQuoting() throws IOException {
        Path f = write("t.tsv", "sentence\tlabel\nit 's \"quoted\" , ok \t1\n\n\"open quote\t0\n");
        List<Row> rows = rows(f, cfg(false));
        assertEquals(List.of("it 's \"quoted\" , ok ", "\"open quote"), rows.stream().map(r -> r.string("sentence")).toList());
        assertEquals(List.of(2, 4), rows.stream().map(Row::line).toList());
        DataException e = fails(write("bad.tsv", "sentence\tlabel\na\t1\nb\t1\t2\n"), cfg(false));
        assertEquals(3, e.line());
        assertTrue(fails(write("comma.tsv", "sentence,label\na,1\n"), cfg(false)).problem().contains("CSV"));
    }

    // ---------------------------------------------------------------- plain text, format choice

    @Test
    void plainTextIsOneDocument() throws IOException {
        String text = "First line\n\nThird \u00e7a line\n";
        List<Row> rows = rows(write("doc.txt", text), cfg(false));
        assertEquals(1, rows.size());
        assertEquals(text, rows.getFirst().string("text"));
    }

    @Test
    void formatByExtensionOrOverride() throws IOException {
        assertEquals(FileFormat.JSONL, FileFormat.forPath(Path.of("x/train.JSONL")));
        assertEquals(FileFormat.TSV, FileFormat.forPath(Path.of("dev.tsv")));
        assertEquals(FileFormat.TEXT, FileFormat.forPath(Path.of("input.txt")));
        DataException e = assertThrows(DataException.class, () -> FileFormat.forPath(Path.of("data.parquet")));
        assertTrue(e.getMessage().contains("data.parquet") && e.getMessage().contains("parquet"));
        // A JSONL file with a .dat name, read through the explicit override.
        Path f = write("rows.dat", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
        DataConfig c = DataConfig.builder(DataFormat.TEXT, 8).optFileFormat(FileFormat.byName("jsonl")).build();
        assertEquals(2, rows(f, c).size());
        assertThrows(DataException.class, () -> rows(f, cfg(false)));
    }
}
