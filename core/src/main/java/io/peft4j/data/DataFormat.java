package io.peft4j.data;

import java.util.Locale;

/** What the rows mean, and so how they become token {@link Example}s. */
public enum DataFormat {
    /** Raw documents ({@code text} field, or a plain file) packed into fixed windows for causal-LM training. */
    TEXT,
    /** Prompt and completion (also Alpaca {@code instruction/input/output}, GSM8K {@code question/answer}); loss on the completion. */
    COMPLETION,
    /** A {@code messages} list rendered through a chat template; loss on the assistant turns. */
    CHAT,
    /** A text and a class label; the example carries the label id. */
    CLASSIFICATION;

    /** By name, case-insensitive; also accepts {@code instruct}/{@code sft} for COMPLETION and {@code cls} for CLASSIFICATION. */
    public static DataFormat byName(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "text", "lm", "pretrain" -> TEXT;
            case "completion", "completions", "instruct", "instruction", "sft" -> COMPLETION;
            case "chat", "messages", "conversation" -> CHAT;
            case "classification", "cls", "classify" -> CLASSIFICATION;
            default -> throw new IllegalArgumentException("unknown data format '" + name + "' (known: text, completion, chat, classification)");
        };
    }
}
