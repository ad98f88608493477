package io.peft4j.adapters;

import io.peft4j.autograd.NnOps;
import io.peft4j.tensor.Tensor;

import java.util.SplittableRandom;

/** Calibration batches for {@link ToyModel}: random inputs [rows, d] and random next-token targets. */
final class ToyCalibration implements Calibration {
    private final ToyModel model;
    private final Tensor[] inputs;     // each [rows, d]
    private final int[][] targets;     // each [rows]

    ToyCalibration(ToyModel model, int batches, int rows, long seed) {
        this.model = model;
        this.inputs = new Tensor[batches];
        this.targets = new int[batches][rows];
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < batches; i++) {
            inputs[i] = Tensor.randn(seed + 31L * i, 1f, rows, model.d);
            for (int j = 0; j < rows; j++) targets[i][j] = rng.nextInt(model.vocab);
        }
    }

    @Override public int batches() { return inputs.length; }

    @Override public Tensor loss(int i) { return NnOps.crossEntropy(model.forward(inputs[i]), targets[i], -100); }
}
