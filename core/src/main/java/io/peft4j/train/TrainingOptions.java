package io.peft4j.train;

/**
 * Everything that decides a training run besides the model, the adapter and the data. Passed whole to the
 * {@link Trainer} and written to {@code training_args.json}.
 *
 * @param steps         optimizer steps (each of {@code gradAccum} micro-batches)
 * @param warmupSteps   linear warm-up steps of the schedule
 * @param maxGradNorm   global gradient-norm clip; 0 disables clipping
 * @param evalEvery     evaluate every N steps (0: only at the end)
 * @param saveEvery     checkpoint every N steps (0: only at the end)
 * @param patience      early stopping: stop after this many evaluations without improvement (0: never)
 * @param maxEvalBatches cap on evaluation batches (0: the whole eval set)
 */
public record TrainingOptions(
        int steps, int gradAccum, double lr, double weightDecay, LrSchedule schedule, int warmupSteps,
        double maxGradNorm, int evalEvery, int saveEvery, int logEvery, int patience, int maxEvalBatches,
        long seed, boolean resume) {

    public TrainingOptions {
        if (steps <= 0) throw new IllegalArgumentException("steps must be positive, got " + steps);
        if (gradAccum <= 0) throw new IllegalArgumentException("grad-accum must be positive, got " + gradAccum);
        if (!(lr > 0)) throw new IllegalArgumentException("lr must be positive, got " + lr);
        if (warmupSteps < 0 || warmupSteps > steps) throw new IllegalArgumentException("warmup must be in [0, steps], got " + warmupSteps);
    }

    public static TrainingOptions defaults(int steps) {
        return new TrainingOptions(steps, 1, 2e-4, 0.0, LrSchedule.LINEAR, 0, 1.0, 0, 0, 1, 0, 0, 42, false);
    }

    public TrainingOptions withLr(double v) { return new TrainingOptions(steps, gradAccum, v, weightDecay, schedule, warmupSteps, maxGradNorm, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withEval(int every, int maxBatches) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, schedule, warmupSteps, maxGradNorm, every, saveEvery, logEvery, patience, maxBatches, seed, resume); }
    public TrainingOptions withSaveEvery(int v) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, schedule, warmupSteps, maxGradNorm, evalEvery, v, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withResume(boolean v) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, schedule, warmupSteps, maxGradNorm, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, v); }
    public TrainingOptions withSteps(int v) { return new TrainingOptions(v, gradAccum, lr, weightDecay, schedule, Math.min(warmupSteps, v), maxGradNorm, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withSchedule(LrSchedule s, int warmup) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, s, warmup, maxGradNorm, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withGradAccum(int v) { return new TrainingOptions(steps, v, lr, weightDecay, schedule, warmupSteps, maxGradNorm, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withPatience(int v) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, schedule, warmupSteps, maxGradNorm, evalEvery, saveEvery, logEvery, v, maxEvalBatches, seed, resume); }
    public TrainingOptions withWeightDecay(double v) { return new TrainingOptions(steps, gradAccum, lr, v, schedule, warmupSteps, maxGradNorm, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withMaxGradNorm(double v) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, schedule, warmupSteps, v, evalEvery, saveEvery, logEvery, patience, maxEvalBatches, seed, resume); }
    public TrainingOptions withLogEvery(int v) { return new TrainingOptions(steps, gradAccum, lr, weightDecay, schedule, warmupSteps, maxGradNorm, evalEvery, saveEvery, v, patience, maxEvalBatches, seed, resume); }
}
