package io.peft4j.data;

import java.io.IOException;
import java.io.Reader;
import java.util.ArrayList;
import java.util.List;

/**
 * Streams records of a delimited file. With quoting (CSV) it follows RFC-4180: a field that starts with a quote
 * runs to the matching quote, {@code ""} inside it is one quote, and it may span lines; a quote inside an unquoted
 * field is kept as a plain character (as Python's csv module does). Without quoting (TSV) quotes are plain text.
 * CRLF, LF and lone CR all end a line. Blank (whitespace-only) lines between records are skipped.
 */
final class DelimitedParser {
    private final Reader in;
    private final String file;
    private final char sep;
    private final boolean quoting;
    private int line = 1;          // 1-based physical line of the next character
    private int recordLine;        // line where the last record started
    private int pushed = -2;       // one character of look-ahead, -2 when empty
    private boolean started;
    private boolean lastHadQuote;  // the last record had a quoted field, so a lone empty field is data, not a blank line

    DelimitedParser(Reader in, String file, char sep, boolean quoting) {
        this.in = in;
        this.file = file;
        this.sep = sep;
        this.quoting = quoting;
    }

    /** 1-based line on which the last record returned (or rejected) started. */
    int recordLine() { return recordLine; }

    private int read() throws IOException {
        if (pushed != -2) { int c = pushed; pushed = -2; return c; }
        int c = in.read();
        if (!started) {
            started = true;
            if (c == '\uFEFF') c = in.read(); // byte-order mark
        }
        return c;
    }

    /** Consumes the LF of a CRLF pair; counts the line. */
    private void endLine(int c) throws IOException {
        if (c == '\r') {
            int d = read();
            if (d != '\n') pushed = d;
        }
        line++;
    }

    /**
     * The next record's fields, or null at end of file. A malformed record throws a {@link DataException} at its
     * first line after consuming the rest of its line, so the caller may skip it and go on; an unterminated quote
     * consumes the rest of the file.
     */
    List<String> next() throws IOException {
        while (true) {
            int c = read();
            if (c == -1) return null;
            recordLine = line;
            List<String> rec = parseRecord(c);
            if (rec.size() == 1 && rec.getFirst().isBlank() && !lastHadQuote) continue;
            return rec;
        }
    }

    private List<String> parseRecord(int c) throws IOException {
        List<String> fields = new ArrayList<>();
        StringBuilder f = new StringBuilder();
        lastHadQuote = false;
        int state = 0; // 0 start of field, 1 unquoted, 2 quoted, 3 after closing quote
        int quoteLine = 0;
        while (true) {
            switch (state) {
                case 0, 1 -> {
                    if (c == -1) { fields.add(f.toString()); return fields; }
                    if (c == sep) { fields.add(f.toString()); f.setLength(0); state = 0; }
                    else if (c == '\n' || c == '\r') { endLine(c); fields.add(f.toString()); return fields; }
                    else if (c == '"' && quoting && state == 0) { state = 2; lastHadQuote = true; quoteLine = line; }
                    else { f.append((char) c); state = 1; }
                }
                case 2 -> {
                    if (c == -1) throw new DataException(file, recordLine,
                            "unterminated quoted field (the quote opened on line " + quoteLine + " is never closed)");
                    if (c == '"') state = 3;
                    else {
                        f.append((char) c);
                        if (c == '\r') {
                            int d = read();
                            if (d == '\n') f.append('\n'); else pushed = d;
                            line++;
                        } else if (c == '\n') line++;
                    }
                }
                default -> { // after a closing quote
                    if (c == '"') { f.append('"'); state = 2; }
                    else if (c == sep) { fields.add(f.toString()); f.setLength(0); state = 0; }
                    else if (c == -1) { fields.add(f.toString()); return fields; }
                    else if (c == '\n' || c == '\r') { endLine(c); fields.add(f.toString()); return fields; }
                    else {
                        int field = fields.size() + 1;
                        skipRestOfLine(c);
                        throw new DataException(file, recordLine, "text after the closing quote of field " + field
                                + " (a quote inside a quoted field must be doubled: \"\")");
                    }
                }
            }
            c = read();
        }
    }

    private void skipRestOfLine(int c) throws IOException {
        while (c != -1 && c != '\n' && c != '\r') c = read();
        if (c != -1) endLine(c);
    }
}
