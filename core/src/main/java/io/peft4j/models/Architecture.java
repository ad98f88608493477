package io.peft4j.models;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The Hugging Face architectures peft4j can load, by their {@code config.json} {@code architectures} name. */
public enum Architecture {
    LLAMA("LlamaForCausalLM", "llama", true),
    MISTRAL("MistralForCausalLM", "mistral", true),
    QWEN2("Qwen2ForCausalLM", "qwen2", true),
    GPT2("GPT2LMHeadModel", "gpt2", true),
    BERT("BertModel", "bert", false),
    BERT_SEQUENCE_CLASSIFICATION("BertForSequenceClassification", null, false);

    /** The {@code architectures[0]} spelling. */
    public final String hfName;
    /** The {@code model_type} that maps to this architecture when {@code architectures} is absent (or null). */
    public final String modelType;
    public final boolean causalLM;

    Architecture(String hfName, String modelType, boolean causalLM) {
        this.hfName = hfName;
        this.modelType = modelType;
        this.causalLM = causalLM;
    }

    /** True for the decoder family that shares the Llama code path (RMSNorm, RoPE, SwiGLU). */
    public boolean llamaFamily() { return this == LLAMA || this == MISTRAL || this == QWEN2; }

    public boolean bert() { return this == BERT || this == BERT_SEQUENCE_CLASSIFICATION; }

    public static String supportedNames() {
        return Arrays.stream(values()).map(a -> a.hfName).collect(Collectors.joining(", "));
    }

    /** The architecture for an HF name; the error lists every supported one. */
    public static Architecture fromHfName(String name, String source) {
        for (Architecture a : values()) if (a.hfName.equals(name)) return a;
        throw new IllegalArgumentException(source + ": unsupported architecture '" + name + "'; supported: " + supportedNames());
    }

    static Architecture fromModelType(String modelType, String source) {
        for (Architecture a : values()) if (modelType.equals(a.modelType)) return a;
        throw new IllegalArgumentException(source + ": no 'architectures' and unsupported model_type '" + modelType + "'; supported architectures: " + supportedNames());
    }
}
