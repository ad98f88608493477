/**
 * Training data: {@link io.peft4j.data.RowReader} reads JSONL, JSON, CSV, TSV and plain-text files row by row
 * (errors name the file and line; {@code skipBadRows} skips and counts), {@link io.peft4j.data.DataLoader} turns
 * rows into token {@link io.peft4j.data.Example}s for a {@link io.peft4j.data.DataFormat} (packed text, completion,
 * chat, classification), {@link io.peft4j.data.Dataset} holds them (deterministic shuffle, last-fraction eval
 * split) and {@link io.peft4j.data.Batcher} cuts padded {@link io.peft4j.data.Batch}es with a resumable position.
 *
 * <p>Label convention throughout: {@code labels[t]} is the target for input position {@code t} (already shifted
 * by one), {@link io.peft4j.data.Example#IGNORE} (-100) where no loss is taken.
 */
package io.peft4j.data;
