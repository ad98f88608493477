package io.peft4j.adapters;

import io.peft4j.autograd.Tape;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The calibration passes give the true full-weight gradient and the true layer inputs, and leave the model as it was. */
class CalibratorTest {
    @Test
    void weightGradientsEqualAutogradWithTrainableWeights() {
        ToyModel m = new ToyModel(1, 12, 20, 11, 2);
        ToyCalibration cal = new ToyCalibration(m, 3, 6, 5);
        Map<String, Linear> targets = new LinkedHashMap<>();
        for (String n : List.of("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj")) targets.put(n, m.linears().get(n));
        float[] before = m.forward(Tensor.randn(7, 1f, 5, 12)).toFloatArray();
        Map<String, Tensor> grads = Calibrator.weightGradients(targets, cal, 2, null);
        assertArrayEquals(before, m.forward(Tensor.randn(7, 1f, 5, 12)).toFloatArray(), "hooks removed afterwards");
        for (Linear lin : m.linears().values()) assertNull(lin.weight().grad(), "no gradient buffer on frozen weights");

        // reference: make the weights trainable leaves and let the tape compute dL/dW, averaged over the same 2 batches
        Map<String, float[]> want = new LinkedHashMap<>();
        for (var e : targets.entrySet()) {
            Tensor w = e.getValue().weight().copyToF32().requiresGrad(true);
            e.getValue().setWeight(w);
            want.put(e.getKey(), new float[(int) w.numel()]);
        }
        for (int i = 0; i < 2; i++) {
            try (Tape tape = Tape.record()) { tape.backward(cal.loss(i)); }
        }
        for (var e : targets.entrySet()) {
            float[] g = e.getValue().weight().grad().data(), got = grads.get(e.getKey()).data();
            double maxErr = 0, maxAbs = 0;
            for (int k = 0; k < g.length; k++) {
                maxErr = Math.max(maxErr, Math.abs(g[k] / 2 - got[k]));
                maxAbs = Math.max(maxAbs, Math.abs(g[k] / 2));
            }
            assertTrue(maxAbs > 1e-4, "the gradient is not trivially zero");
            assertTrue(maxErr <= 1e-5 * (1 + maxAbs), e.getKey() + ": max error " + maxErr);
        }
    }

    @Test
    void inputActivationsAreTheLayerInputs() {
        ToyModel m = new ToyModel(1, 12, 20, 11, 2);
        ToyCalibration cal = new ToyCalibration(m, 3, 6, 5);
        String q0 = "model.layers.0.self_attn.q_proj";
        List<Tensor> seen = new ArrayList<>();
        Calibrator.inputActivations(Map.of(q0, m.linears().get(q0)), cal, 2, (name, x) -> seen.add(x), null);
        assertEquals(2, seen.size());
        // layer 0's q_proj sees the model input itself: rebuild batch 1's input as ToyCalibration does
        assertArrayEquals(Tensor.randn(5 + 31L, 1f, 6, 12).toFloatArray(), seen.get(1).toFloatArray());
    }
}
