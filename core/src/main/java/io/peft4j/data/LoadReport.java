package io.peft4j.data;

import java.util.List;

/**
 * What loading a data file did, so nothing is dropped without a count.
 *
 * @param file             the file read
 * @param rowsRead         rows used: read, not skipped as bad, not filtered out (empty and no-target rows included)
 * @param rowsSkipped      malformed rows skipped (only with skipBadRows)
 * @param skipReasons      the first few skip messages, each {@code file:line: what}
 * @param rowsFiltered     rows left out by the row filter
 * @param emptyRows        rows whose text (TEXT) or conversation (CHAT) was empty: nothing to train on
 * @param examples         examples produced
 * @param truncated        examples cut to seqLen
 * @param droppedNoTarget  examples dropped with no target token (truncation cut them all, or a chat had no assistant turn)
 * @param tokens           input tokens over all examples (padding excluded)
 * @param targets          positions that take a loss (for CLASSIFICATION: the number of examples)
 * @param droppedTailTokens TEXT packing: tokens at the end that did not fill a window (dropped unless padLastWindow)
 */
public record LoadReport(String file, int rowsRead, int rowsSkipped, List<String> skipReasons, int rowsFiltered,
                         int emptyRows, int examples, int truncated, int droppedNoTarget, long tokens, long targets,
                         int droppedTailTokens) {

    /** A one-paragraph summary for logs. */
    public String summary() {
        StringBuilder sb = new StringBuilder();
        sb.append(file).append(": ").append(rowsRead).append(" rows -> ").append(examples).append(" examples, ")
                .append(tokens).append(" tokens, ").append(targets).append(" targets");
        if (rowsSkipped > 0) sb.append("; skipped ").append(rowsSkipped).append(" bad rows");
        if (rowsFiltered > 0) sb.append("; filtered out ").append(rowsFiltered).append(" rows");
        if (emptyRows > 0) sb.append("; ").append(emptyRows).append(" empty rows");
        if (truncated > 0) sb.append("; truncated ").append(truncated).append(" examples");
        if (droppedNoTarget > 0) sb.append("; dropped ").append(droppedNoTarget).append(" examples with no target left after truncation");
        if (droppedTailTokens > 0) sb.append("; dropped the last ").append(droppedTailTokens).append(" tokens (a partial window)");
        for (String r : skipReasons) sb.append("\n  skipped ").append(r);
        if (rowsSkipped > skipReasons.size()) sb.append("\n  ... and ").append(rowsSkipped - skipReasons.size()).append(" more");
        return sb.toString();
    }
}
