package io.peft4j.adapters.structure;

import io.peft4j.tensor.Tensor;

import java.util.List;

/**
 * Proximal steps of the sparsity penalties this family adds to the loss. A (sub)gradient step of {@code lambda |x|}
 * or {@code lambda ||x||_2} only oscillates around zero; the proximal map after each optimizer update
 * ({@code x <- argmin_z lambda·lr·pen(z) + ||z - x||^2 / 2}) lands on exact zeros, the standard way to make lasso and
 * group-lasso penalties select.
 */
final class Proximal {
    private Proximal() {}

    /**
     * Soft threshold, the proximal map of {@code t |x|} entry by entry: {@code sign(x) max(|x| - t, 0)}, in place on
     * entries {@code [0, n)} of a dense tensor. Returns how many of them are exactly zero afterwards.
     */
    static int softThreshold(Tensor x, int n, double t) {
        float[] d = x.data();
        int off = x.dataOffset(), zeros = 0;
        for (int i = off; i < off + n; i++) {
            double v = d[i];
            double s = Math.abs(v) - t;
            d[i] = s > 0 ? (float) Math.copySign(s, v) : 0f;
            if (d[i] == 0f) zeros++;
        }
        return zeros;
    }

    /** {@code sqrt(sum x^2)} over every entry of the tensors (double accumulation; null entries skipped). */
    static double norm(List<Tensor> group) {
        double s = 0;
        for (Tensor t : group) {
            if (t == null) continue;
            float[] d = t.data();
            int off = t.dataOffset(), n = (int) t.numel();
            for (int i = off; i < off + n; i++) s += (double) d[i] * d[i];
        }
        return Math.sqrt(s);
    }

    /**
     * Block soft threshold, the proximal map of {@code t ||theta_g||_2} for one group: {@code theta_g <- max(0, 1 -
     * t / ||theta_g||) theta_g}, in place; a group whose norm is at most {@code t} becomes exactly zero. Returns the
     * group's norm afterwards.
     */
    static double blockSoftThreshold(List<Tensor> group, double t) {
        double norm = norm(group);
        double f = norm <= t ? 0 : 1 - t / norm;
        for (Tensor x : group) {
            if (x == null) continue;
            float[] d = x.data();
            int off = x.dataOffset(), n = (int) x.numel();
            if (f == 0) java.util.Arrays.fill(d, off, off + n, 0f);
            else for (int i = off; i < off + n; i++) d[i] = (float) (d[i] * f);
        }
        return f == 0 ? 0 : norm * f;
    }

    /**
     * The Transformer block a module belongs to: its name up to the first purely numeric path segment
     * ({@code model.layers.3.mlp.down_proj -> model.layers.3}); the whole name when there is none.
     */
    static String block(String module) {
        String[] parts = module.split("\\.");
        StringBuilder sb = new StringBuilder();
        for (String p : parts) {
            if (sb.length() > 0) sb.append('.');
            sb.append(p);
            if (!p.isEmpty() && p.chars().allMatch(Character::isDigit)) return sb.toString();
        }
        return module;
    }
}
