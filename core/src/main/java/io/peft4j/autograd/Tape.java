package io.peft4j.autograd;

import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reverse-mode autograd as a tape (llm.c / micrograd style): while a tape is recording on this thread, every op
 * whose inputs require gradients appends its backward step. Ops run in order, so the reversed tape is a valid
 * topological order. Without a recording tape nothing is kept (inference mode).
 *
 * <pre>{@code
 * try (Tape tape = Tape.record()) {
 *     Tensor loss = NnOps.crossEntropy(model.forward(ids), targets, -100);
 *     tape.backward(loss);
 * }
 * }</pre>
 */
public final class Tape implements AutoCloseable {
    /** One recorded backward step: reads the output's gradient, accumulates into the inputs' gradients. */
    @FunctionalInterface
    public interface Backward { void run(); }

    private static final ThreadLocal<Tape> CURRENT = new ThreadLocal<>();

    /** A recorded op: its output and its backward step. */
    private record Step(Tensor out, Backward backward) {}

    private final List<Step> steps = new ArrayList<>();
    private final Tape previous;
    private boolean closed;

    private Tape(Tape previous) { this.previous = previous; }

    /** Starts recording on this thread (nesting allowed; the innermost tape records). */
    public static Tape record() {
        Tape t = new Tape(CURRENT.get());
        CURRENT.set(t);
        return t;
    }

    /** True if an op with these inputs must be recorded: a tape is recording and some input requires gradients. */
    public static boolean tracking(Tensor... inputs) {
        if (CURRENT.get() == null) return false;
        for (Tensor t : inputs) if (t != null && t.requiresGrad()) return true;
        return false;
    }

    /**
     * Called by ops: if {@link #tracking} holds for {@code inputs}, marks {@code out} as requiring gradients and
     * appends {@code backward}; otherwise does nothing. Returns {@code out}.
     */
    public static Tensor record(Tensor out, Backward backward, Tensor... inputs) {
        if (!tracking(inputs)) return out;
        out.requiresGrad(true);
        CURRENT.get().steps.add(new Step(out, backward));
        return out;
    }

    /** Number of recorded steps. */
    public int size() { return steps.size(); }

    /** Back-propagates from a scalar (one-element) loss: seeds its gradient with 1. */
    public void backward(Tensor loss) {
        if (loss.numel() != 1) throw new IllegalArgumentException("backward(loss) needs a one-element tensor, got " + Arrays.toString(loss.shape()));
        backward(loss, Tensor.full(1f, loss.shape()));
    }

    /**
     * Back-propagates with an explicit seed gradient of {@code out}'s shape (added to any existing gradient).
     * Consumes the tape: once an op's backward has run, nothing can add to its output's gradient any more, so that
     * gradient buffer and the step (with the activations it saved) are released at once. Peak memory during
     * backward is then the activations still ahead plus a few gradients, not every intermediate gradient at once.
     * Gradients of leaves (parameters, inputs) stay.
     */
    public void backward(Tensor out, Tensor seed) {
        if (!out.requiresGrad()) throw new IllegalStateException("output does not require gradients: nothing was recorded for it");
        if (!Arrays.equals(out.shape(), seed.shape())) throw new IllegalArgumentException("seed shape " + Arrays.toString(seed.shape()) + " != output shape " + Arrays.toString(out.shape()));
        float[] g = out.gradBuffer().data();
        Tensor s = seed.contiguous();
        float[] sd = s.data();
        int so = s.dataOffset();
        for (int i = 0; i < g.length; i++) g[i] += sd[so + i];
        for (int i = steps.size() - 1; i >= 0; i--) {
            Step st = steps.set(i, null);
            st.backward().run();
            if (st.out() != out) st.out().clearGrad();
        }
        steps.clear();
    }

    /** Drops the recorded steps (and with them the saved activations) so the tape can record a new step. */
    public void clear() { steps.clear(); }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        steps.clear();
        if (CURRENT.get() == this) {
            if (previous == null) CURRENT.remove(); else CURRENT.set(previous);
        }
    }
}
