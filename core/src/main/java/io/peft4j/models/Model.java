package io.peft4j.models;

import io.peft4j.nn.Module;

/** A loaded model: its config, its named layers and the weights it was built from (closing releases the mappings). */
public interface Model extends Module, AutoCloseable {
    ModelConfig config();

    /** The source the weights were read from (files stay mapped while the model is open). */
    WeightSource weights();

    @Override
    default void close() { weights().close(); }
}
