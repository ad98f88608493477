package io.peft4j.adapters;

/** One hyper-parameter of an adapter method: its key (as given to {@code --opt key=value}), default and meaning. */
public record MethodOption(String key, String defaultValue, String description) {}
