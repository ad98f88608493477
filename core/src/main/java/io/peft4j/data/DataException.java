package io.peft4j.data;

/**
 * A data file, or one row of it, cannot be used. The message is one line: {@code file:line: what is wrong}
 * ({@link #line()} is 1-based, 0 when the fault is not tied to a line).
 */
public final class DataException extends RuntimeException {
    private final String file;
    private final int line;
    private final String problem;

    public DataException(String file, int line, String problem) {
        this(file, line, problem, null);
    }

    public DataException(String file, int line, String problem, Throwable cause) {
        super(file + (line > 0 ? ":" + line : "") + ": " + problem, cause);
        this.file = file;
        this.line = line;
        this.problem = problem;
    }

    /** The file at fault, as given. */
    public String file() { return file; }

    /** The 1-based line where the bad row starts, or 0. */
    public int line() { return line; }

    /** What is wrong, without the location. */
    public String problem() { return problem; }
}
