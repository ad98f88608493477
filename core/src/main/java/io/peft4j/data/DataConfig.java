package io.peft4j.data;

import java.util.List;

/**
 * How to read a data file and turn its rows into {@link Example}s. Build with {@link #builder}; every optional
 * setting has an {@code opt*} method and a default that suits the common datasets.
 *
 * @param format          what the rows mean
 * @param seqLen          tokens per example fed to the model (TEXT: the window length L; others: the cap)
 * @param fileFormat      the file layout, or null to choose by extension
 * @param skipBadRows     skip (and count) malformed rows instead of failing on the first
 * @param textField       TEXT/CLASSIFICATION text field; null = {@code text} (CLASSIFICATION also {@code sentence})
 * @param promptField     COMPLETION prompt field; null = auto ({@code prompt}, Alpaca {@code instruction}+{@code input}, {@code question})
 * @param completionField COMPLETION completion field; null = the partner of the detected prompt field
 * @param messagesField   CHAT field holding the list of {role, content} messages
 * @param labelField      CLASSIFICATION label field
 * @param labelNames      CLASSIFICATION label names in index order, or null to derive them from the data
 * @param chatFormat      CHAT template name (chatml, qwen3, llama2, llama3, zephyr), or null for the tokenizer's own
 * @param promptTemplate  COMPLETION: text before the completion, with {@code {prompt}} standing for the prompt
 * @param addBos          prepend BOS (TEXT, COMPLETION, CLASSIFICATION); null = if the tokenizer has a BOS distinct from EOS
 * @param packing         TEXT: pack documents into windows; false = one (truncated) example per document
 * @param padLastWindow   TEXT with packing: pad the last partial window instead of dropping it
 * @param jsonListField   JSON object files: the field holding the rows; null = data, rows, examples, instances, records, train
 * @param filterField     keep only rows whose field equals {@code filterValue} (others are counted as filtered); null = all
 * @param filterValue     the value {@code filterField} must have
 * @param weightField     optional numeric per-example loss weight field; null = no weights
 */
public record DataConfig(
        DataFormat format,
        int seqLen,
        FileFormat fileFormat,
        boolean skipBadRows,
        String textField,
        String promptField,
        String completionField,
        String messagesField,
        String labelField,
        List<String> labelNames,
        String chatFormat,
        String promptTemplate,
        Boolean addBos,
        boolean packing,
        boolean padLastWindow,
        String jsonListField,
        String filterField,
        String filterValue,
        String weightField) {

    public DataConfig {
        if (format == null) throw new IllegalArgumentException("data format is required");
        if (seqLen < 1) throw new IllegalArgumentException("seqLen must be >= 1, got " + seqLen);
        if ((promptField == null) != (completionField == null))
            throw new IllegalArgumentException("give both the prompt and the completion field, or neither (auto-detect)");
        if (promptTemplate == null || !promptTemplate.contains("{prompt}"))
            throw new IllegalArgumentException("promptTemplate must contain {prompt}: '" + promptTemplate + "'");
        if ((filterField == null) != (filterValue == null))
            throw new IllegalArgumentException("give both the filter field and its value, or neither");
        if (labelNames != null) {
            labelNames = List.copyOf(labelNames);
            if (labelNames.isEmpty()) throw new IllegalArgumentException("labelNames is empty");
            if (labelNames.stream().distinct().count() != labelNames.size())
                throw new IllegalArgumentException("labelNames has duplicates: " + labelNames);
        }
    }

    public static Builder builder(DataFormat format, int seqLen) { return new Builder(format, seqLen); }

    /** A builder starting from this config. */
    public Builder toBuilder() {
        Builder b = new Builder(format, seqLen);
        b.fileFormat = fileFormat; b.skipBadRows = skipBadRows; b.textField = textField; b.promptField = promptField;
        b.completionField = completionField; b.messagesField = messagesField; b.labelField = labelField;
        b.labelNames = labelNames; b.chatFormat = chatFormat; b.promptTemplate = promptTemplate; b.addBos = addBos;
        b.packing = packing; b.padLastWindow = padLastWindow; b.jsonListField = jsonListField;
        b.filterField = filterField; b.filterValue = filterValue; b.weightField = weightField;
        return b;
    }

    /** Builder for {@link DataConfig}. */
    public static final class Builder {
        private final DataFormat format;
        private final int seqLen;
        private FileFormat fileFormat;
        private boolean skipBadRows;
        private String textField, promptField, completionField;
        private String messagesField = "messages", labelField = "label";
        private List<String> labelNames;
        private String chatFormat;
        private String promptTemplate = "{prompt}\n";
        private Boolean addBos;
        private boolean packing = true, padLastWindow;
        private String jsonListField, filterField, filterValue, weightField;

        private Builder(DataFormat format, int seqLen) { this.format = format; this.seqLen = seqLen; }

        public Builder optFileFormat(FileFormat f) { fileFormat = f; return this; }
        public Builder optSkipBadRows(boolean v) { skipBadRows = v; return this; }
        public Builder optTextField(String f) { textField = f; return this; }
        public Builder optCompletionFields(String prompt, String completion) { promptField = prompt; completionField = completion; return this; }
        public Builder optMessagesField(String f) { messagesField = f; return this; }
        public Builder optLabelField(String f) { labelField = f; return this; }
        public Builder optLabelNames(List<String> names) { labelNames = names; return this; }
        public Builder optChatFormat(String name) { chatFormat = name; return this; }
        public Builder optPromptTemplate(String t) { promptTemplate = t; return this; }
        public Builder optAddBos(Boolean v) { addBos = v; return this; }
        public Builder optPacking(boolean v) { packing = v; return this; }
        public Builder optPadLastWindow(boolean v) { padLastWindow = v; return this; }
        public Builder optJsonListField(String f) { jsonListField = f; return this; }
        public Builder optFilter(String field, String value) { filterField = field; filterValue = value; return this; }
        public Builder optWeightField(String f) { weightField = f; return this; }

        public DataConfig build() {
            return new DataConfig(format, seqLen, fileFormat, skipBadRows, textField, promptField, completionField,
                    messagesField, labelField, labelNames, chatFormat, promptTemplate, addBos, packing, padLastWindow,
                    jsonListField, filterField, filterValue, weightField);
        }
    }
}
