package io.peft4j.train;

import java.util.Locale;

/**
 * Learning-rate schedules with linear warm-up, as Hugging Face's {@code get_*_schedule_with_warmup}: the factor
 * rises from 0 to 1 over {@code warmup} steps, then stays (constant), falls linearly to 0 at {@code total} (linear),
 * or follows half a cosine to 0 (cosine). {@code step} counts optimizer steps from 0.
 */
public enum LrSchedule {
    CONSTANT, LINEAR, COSINE;

    public double factor(long step, long warmup, long total) {
        if (step < warmup) return (double) step / Math.max(1, warmup);
        return switch (this) {
            case CONSTANT -> 1.0;
            case LINEAR -> Math.max(0.0, (double) (total - step) / Math.max(1, total - warmup));
            case COSINE -> {
                double progress = (double) (step - warmup) / Math.max(1, total - warmup);
                yield Math.max(0.0, 0.5 * (1 + Math.cos(Math.PI * progress)));
            }
        };
    }

    public static LrSchedule parse(String s) {
        try {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown schedule '" + s + "' (constant, linear, cosine)");
        }
    }
}
