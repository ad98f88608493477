package io.peft4j.io;

import java.io.IOException;

/**
 * A safetensors file (or a model directory's index) is malformed. The message is one line that names the file and,
 * where one is at fault, the tensor key.
 */
public final class SafetensorsFormatException extends IOException {
    public SafetensorsFormatException(String message) { super(message); }

    public SafetensorsFormatException(String message, Throwable cause) { super(message, cause); }
}
