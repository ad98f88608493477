package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * ALLoRA: LoRA without dropout and without the alpha / r scaling, whose gradients are scaled per parameter group by
 * a coefficient inversely proportional to the group's l2 norm, {@code c(theta) = 1 / sqrt(1/eta^2 + ||theta||^2)}: a
 * group at zero (B at init) moves with gain eta, a large group more slowly. From "ALLoRA: Adaptive Learning Rate
 * Mitigates LoRA Fatal Flaws" (Huang, Balestriero; arXiv 2410.09692). The coefficient depends only on the parameters,
 * so scaling each sample's gradient (the paper's wording) equals scaling the batch gradient, which is what is done:
 * after the backward pass, before clipping and the optimizer update ({@link AdapterMethod#beforeUpdate}).
 *
 * <p>The transform is an optimiser option for any LoRA-shaped adapter: {@link #scaleGradients} can be installed with
 * {@code Trainer.withBeforeUpdate(...)} on any method's layers. Registered as a method, "allora" is PEFT's default
 * LoRA init (Kaiming-uniform A, zero B) with the config rewritten to scaling 1 (alpha = r, rsLoRA off) and dropout 0,
 * plus the transform.
 *
 * <p>Where we chose (the paper's exact grouping and default eta could not be confirmed from the text available to us):
 * groups are the rank-one components, row j of A and column j of B ({@code norm_groups=rank}, default), or the rows of
 * both factors, i.e. the parameters feeding one output unit ({@code norm_groups=row}); eta defaults to 1, so B's
 * first gradients equal LoRA's. Middle factors and gains of other methods are left unscaled. With AdamW, a coefficient
 * that is constant over steps is normalised away by the second moment (up to eps); it acts through its change over
 * training.
 */
public final class Allora implements AdapterMethod {
    @Override public String name() { return "allora"; }

    @Override public String summary() { return "LoRA without dropout or scaling; gradients scaled by 1/sqrt(1/eta^2 + ||theta||^2) per row of A / column of B"; }

    @Override public String paper() { return "ALLoRA: Adaptive Learning Rate Mitigates LoRA Fatal Flaws (arXiv 2410.09692)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("eta", "1", "gradient gain at zero norm: coefficient 1 / sqrt(1/eta^2 + ||theta||^2)"),
                new MethodOption("norm_groups", "rank", "rank (row j of A, column j of B) | row (rows of A and of B)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        checkOptions(o);
        LoraConfig unit = Factors.unitScaling(ctx.config(), ctx.targets().keySet(), true);
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = unit.rankFor(module), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            Tensor a = Factors.loraA(ctx, "kaiming", r, in).requiresGrad(true);
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            layers.put(module, ctx.layer(unit, module, a, b, null, null));
        }
        return new Initialised(unit, layers);
    }

    @Override
    public void beforeUpdate(int step, Map<String, LoraLayer> layers, MethodConfig options) {
        scaleGradients(layers.values(), options.number("eta"), options.string("norm_groups").equals("rank"));
    }

    private static void checkOptions(MethodConfig o) {
        double eta = o.number("eta");
        if (!(eta > 0)) throw new IllegalArgumentException("method allora: eta must be > 0, got " + eta);
        String g = o.string("norm_groups");
        if (!g.equals("rank") && !g.equals("row"))
            throw new IllegalArgumentException("method allora: option norm_groups must be rank or row, got '" + g + "'");
    }

    /** {@code 1 / sqrt(1/eta^2 + norm^2)}. */
    public static double coefficient(double norm, double eta) {
        return 1 / Math.sqrt(1 / (eta * eta) + norm * norm);
    }

    /**
     * Scales the gradients of every layer's trainable A and B in place: each group (row j of A and column j of B when
     * {@code byRank}, else each row of A and each row of B) by {@link #coefficient} of that group's current values.
     */
    public static void scaleGradients(Iterable<LoraLayer> layers, double eta, boolean byRank) {
        if (!(eta > 0)) throw new IllegalArgumentException("ALLoRA: eta must be > 0, got " + eta);
        for (LoraLayer l : layers) {
            Tensor a = l.loraA(), b = l.loraB();
            if (a.requiresGrad() && a.grad() != null) scaleRows(a, eta);
            if (b.requiresGrad() && b.grad() != null) {
                if (byRank) scaleColumns(b, eta);
                else scaleRows(b, eta);
            }
        }
    }

    /** grad[i, :] *= c(||p[i, :]||) for a 2-D parameter p. */
    private static void scaleRows(Tensor p, double eta) {
        int rows = p.dim(0), cols = p.dim(1);
        float[] v = p.data(), g = p.grad().data();
        int po = p.dataOffset(), go = p.grad().dataOffset();
        for (int i = 0; i < rows; i++) {
            double s = 0;
            for (int k = 0; k < cols; k++) { double x = v[po + i * cols + k]; s += x * x; }
            Factors.scaleRow(g, go, cols, i, (float) coefficient(Math.sqrt(s), eta));
        }
    }

    /** grad[:, j] *= c(||p[:, j]||) for a 2-D parameter p. */
    private static void scaleColumns(Tensor p, double eta) {
        int rows = p.dim(0), cols = p.dim(1);
        float[] v = p.data(), g = p.grad().data();
        int po = p.dataOffset(), go = p.grad().dataOffset();
        double[] s = new double[cols];
        for (int o = 0; o < rows; o++) for (int j = 0; j < cols; j++) { double x = v[po + o * cols + j]; s[j] += x * x; }
        for (int j = 0; j < cols; j++) Factors.scaleColumn(g, go, rows, cols, j, (float) coefficient(Math.sqrt(s[j]), eta));
    }
}
