package io.peft4j.nn;

import io.peft4j.tensor.Tensor;

import java.util.Map;

/**
 * Something made of named layers: models expose their linear layers (where adapters attach) and every parameter
 * tensor, both keyed by Hugging Face module / parameter names, in the order PyTorch's {@code named_modules()} /
 * {@code named_parameters()} list them (so layer 2 comes before layer 10).
 */
public interface Module {
    /** Linear layers by HF module name (e.g. {@code model.layers.0.self_attn.q_proj}), in module order. */
    Map<String, Linear> linears();

    /** Embedding layers by HF module name (e.g. {@code model.embed_tokens}), where embedding adapters attach. */
    default Map<String, Embedding> embeddings() { return Map.of(); }

    /** Every parameter tensor by HF parameter name (e.g. {@code model.norm.weight}), in module order; tied weights appear once. */
    Map<String, Tensor> parameters();
}
