package io.peft4j.data;

import java.nio.file.Path;
import java.util.Locale;

/** How a data file is laid out on disk; chosen by extension ({@link #forPath}) unless given explicitly. */
public enum FileFormat {
    /** One JSON object per line ({@code .jsonl}, {@code .ndjson}); blank lines are ignored. */
    JSONL,
    /** A JSON array of objects, or an object whose list field ({@code data}, {@code rows}, ...) holds them. */
    JSON,
    /** Comma-separated with a header row and RFC-4180 quoting; fields may span lines inside quotes. */
    CSV,
    /** Tab-separated with a header row and no quoting (as GLUE ships it: quote characters are plain text). */
    TSV,
    /** Plain text: the whole file is one document in the text field. */
    TEXT;

    /** By file extension: .jsonl/.ndjson, .json, .csv, .tsv, .txt/.text/.md. */
    public static FileFormat forPath(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        int dot = name.lastIndexOf('.');
        String ext = dot < 0 ? "" : name.substring(dot + 1);
        return switch (ext) {
            case "jsonl", "ndjson" -> JSONL;
            case "json" -> JSON;
            case "csv" -> CSV;
            case "tsv", "tab" -> TSV;
            case "txt", "text", "md" -> TEXT;
            default -> throw new DataException(file.toString(), 0, "cannot tell the file format from the extension '"
                    + ext + "' (known: jsonl, ndjson, json, csv, tsv, txt, text, md); give the format explicitly");
        };
    }

    /** By name, case-insensitive ({@code jsonl}, {@code json}, {@code csv}, {@code tsv}, {@code text}/{@code txt}). */
    public static FileFormat byName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return switch (n) {
            case "jsonl", "ndjson" -> JSONL;
            case "json" -> JSON;
            case "csv" -> CSV;
            case "tsv" -> TSV;
            case "text", "txt", "plain" -> TEXT;
            default -> throw new IllegalArgumentException("unknown file format '" + name + "' (known: jsonl, json, csv, tsv, text)");
        };
    }
}
