package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.Calibration;
import io.peft4j.adapters.Calibrator;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * EVA, Explained Variance Adaptation: "One Initialization to Rule them All: Fine-tuning via Explained Variance
 * Adaptation" (Paischer, Hauzenberger, Schmied, Alkin, Deisenroth, Hochreiter; arXiv 2410.07170, later titled
 * "Parameter Efficient Fine-tuning via Explained Variance Adaptation"), also in Hugging Face PEFT as
 * {@code init_lora_weights="eva"}.
 *
 * <p>A plain LoRA {@code y = W x + s B A x} whose A rows are the top right-singular vectors of the layer's input
 * activations on the training data (the directions carrying the most activation energy, which the paper shows
 * maximise the expected gradient signal of B at step 0), and B = 0, so the model is unchanged at init and nothing
 * is rewritten. Both A and B train.
 *
 * <ol>
 *   <li>Calibration batches run one by one ({@link Calibrator#inputActivations}, padding rows dropped); each target
 *       folds its input rows [N, in] into a streaming truncated SVD ({@link IncrementalSvd}: the incremental PCA
 *       update of Ross et al. on the stacked matrix {@code [diag(s) V^T; X_batch]}, decomposed in double through
 *       the symmetric eigen-decomposition of its Gram on the smaller side, holding {@code min(in, 2 · cap)}
 *       components so that the top {@code cap} are accurate; the exact SVD of every row seen when that is all of
 *       {@code in}). Memory is O(cap · in) per module; a step costs about 7 · in · 2cap multiply-adds per
 *       activation row. Modules whose inputs are bit-identical on the first batch (q/k/v, gate/up; detected by a
 *       128-bit hash, as PEFT detects them by a hash) share one SVD.</li>
 *   <li>After each batch the rank budget {@code sum_m r_m} (r_m the config's rank of module m, so r × modules by
 *       default) is redistributed: every module's components i < cap_m = min(round(rho · r_m), in, out) are
 *       ranked across modules by explained-variance ratio (s_i² over the module's total sum of squares) and the
 *       budget goes to the largest. A module stops receiving activations once its first rank_m components have
 *       converged: |cos| between each component and its value one batch earlier is at least tau. The loop stops
 *       when every module has converged or after {@code batches} batches (or the calibration data) run out;
 *       unconverged modules are then named in the log and use their latest estimate.</li>
 *   <li>The redistributed ranks go into the returned config's {@code rank_pattern} (full module names, replacing
 *       any pattern given); with {@code adjust_scaling} (PEFT's {@code adjust_scaling_factors}, default on) each
 *       module's alpha is multiplied by rank_m / r_m so its scaling alpha / r stays as configured
 *       ({@code alpha_pattern}).</li>
 * </ol>
 *
 * <p>Choices where the paper is silent or PEFT differs: (1) by default the activations are not centred, following
 * the paper's statement (right-singular vectors of the activation matrix, the maximisers of ||A X||); PEFT's code
 * runs scikit-learn-style incremental PCA, i.e. centres them: {@code center=true} does that. (2) Every target keeps
 * rank at least 1 (a peft4j adapter has one layer per target); PEFT drops a module whose share is 0 and gives its
 * rank to others. The floor is taken out of the budget first, so the ranks still sum to it. (3) {@code whiten}
 * divides each A row by the standard deviation of the activations along it (A x then has unit second moment,
 * unit variance when centred); PEFT divides by the square root of the raw singular value, which depends on how
 * many rows were seen. (4) PEFT cycles the data until convergence; here at most {@code batches} distinct batches
 * are used (repeating a batch adds no information). (5) Only padding is masked out, not prompt tokens whose label
 * is ignored (PEFT's {@code use_label_mask}); the Calibrator does not see labels. (6) Convergence compares |cos|, so
 * a sign flip between batches is not a change (PEFT fixes signs and compares the signed cosine).
 */
public final class Eva implements AdapterMethod {
    @Override public String name() { return "eva"; }

    @Override public String summary() {
        return "A = top right-singular vectors of each layer's input activations (incremental SVD until converged), B = 0; ranks redistributed by explained variance";
    }

    @Override public String paper() {
        return "One Initialization to Rule them All: Fine-tuning via Explained Variance Adaptation (arXiv 2410.07170)";
    }

    @Override public boolean needsCalibration() { return true; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("rho", "2", "rank redistribution cap: a module gets at most round(rho * r) ranks (>= 1; 1 = uniform ranks)"),
                new MethodOption("tau", "0.99", "a component has converged when |cos| with its value one batch earlier is >= tau (in [0, 1])"),
                new MethodOption("batches", "32", "maximum number of calibration batches (fewer when every module converges)"),
                new MethodOption("whiten", "false", "scale each A row by 1 / std of the activations along it"),
                new MethodOption("center", "false", "SVD of mean-centred activations (incremental PCA, as PEFT's code) instead of the raw ones (the paper)"),
                new MethodOption("adjust_scaling", "true", "multiply each module's alpha by its new rank / r so the scaling alpha / r is kept (PEFT's adjust_scaling_factors)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        double rho = o.number("rho"), tau = o.number("tau");
        int maxBatches = o.integer("batches");
        boolean whiten = o.flag("whiten"), center = o.flag("center"), adjust = o.flag("adjust_scaling");
        if (!(rho >= 1)) throw new IllegalArgumentException("method eva: option rho must be >= 1, got " + rho);
        if (!(tau >= 0 && tau <= 1)) throw new IllegalArgumentException("method eva: option tau must be in [0, 1], got " + tau);
        if (maxBatches < 1) throw new IllegalArgumentException("method eva: option batches must be >= 1, got " + maxBatches);
        Calibration cal = ctx.requireCalibration();
        LoraConfig config = ctx.config();
        PrintStream log = ctx.log();

        List<String> names = new ArrayList<>(ctx.targets().keySet());
        int n = names.size();
        Linear[] lins = new Linear[n];
        int[] given = new int[n], caps = new int[n];
        int budget = 0;
        Map<String, Integer> index = new HashMap<>();
        Map<Integer, Integer> capByIn = new HashMap<>();
        for (int m = 0; m < n; m++) {
            String name = names.get(m);
            Linear lin = ctx.targets().get(name);
            lins[m] = lin;
            index.put(name, m);
            int in = lin.inFeatures(), out = lin.outFeatures(), r = config.rankFor(name);
            if (r > Math.min(in, out))
                throw new IllegalArgumentException("rank r=" + r + " is larger than layer " + name + " allows (in " + in + ", out " + out + ")");
            given[m] = r;
            caps[m] = (int) Math.min(Math.round(r * rho), Math.min(in, out));
            budget += r;
            capByIn.merge(in, caps[m], Math::max);
        }

        int total = Math.min(maxBatches, cal.batches());
        if (total < 1) throw new IllegalArgumentException("method eva: the calibration data has no batches");
        int[] leader = new int[n];
        Arrays.fill(leader, -1);
        IncrementalSvd[] svd = new IncrementalSvd[n];             // indexed by leader
        boolean[][] converged = new boolean[n][];                  // by leader: [keep]
        boolean[] fed = new boolean[n];
        int[] ranks = caps.clone();                                // PEFT starts from the caps until the first distribution
        Map<Fingerprint, Integer> firstWith = new HashMap<>();
        int used = 0;
        for (int t = 0; t < total; t++) {
            Map<String, Linear> hooked = new LinkedHashMap<>();
            if (t == 0) hooked.putAll(ctx.targets());
            else for (int m = 0; m < n; m++)
                if (leader[m] == m && !hasConverged(converged[m], groupNeed(m, leader, ranks))) hooked.put(names.get(m), lins[m]);
            if (hooked.isEmpty()) break;
            Map<Integer, double[]> before = new HashMap<>();
            Map<Integer, Integer> kBefore = new HashMap<>();
            if (t > 0) for (String name : hooked.keySet()) {
                int m = index.get(name);
                before.put(m, svd[m].snapshot());
                kBefore.put(m, svd[m].components());
            }
            Arrays.fill(fed, false);
            final int batch = t;
            Calibrator.inputActivations(hooked, single(cal, t), 1, (name, x) -> {
                int m = index.get(name);
                float[] rows = x.toFloatArray();
                int count = x.dim(0);
                if (batch == 0 && leader[m] < 0) {
                    // (an all-padding first batch would make every input "equal": no sharing then)
                    Integer first = count == 0 ? null : firstWith.putIfAbsent(Fingerprint.of(rows, count, lins[m].inFeatures()), m);
                    if (first != null) { leader[m] = first; return; }   // same input as an earlier module: share its SVD
                    leader[m] = m;
                    int in = lins[m].inFeatures();
                    svd[m] = new IncrementalSvd(in, Math.min(in, 2 * capByIn.get(in)), center);
                    converged[m] = new boolean[svd[m].keep()];
                }
                if (leader[m] != m) return;
                if (count > 0) { svd[m].update(rows, count); fed[m] = true; }
            }, null);
            used++;
            if (t == 0) for (int m = 0; m < n; m++) if (leader[m] < 0) {
                // the forward pass never reached this target: keep an empty SVD (no variance, rank floor only)
                leader[m] = m;
                int in = lins[m].inFeatures();
                svd[m] = new IncrementalSvd(in, Math.min(in, 2 * capByIn.get(in)), center);
                converged[m] = new boolean[svd[m].keep()];
                if (log != null) log.println("eva: warning: " + names.get(m) + " received no input during calibration");
            }
            for (Map.Entry<Integer, double[]> e : before.entrySet()) {
                int m = e.getKey();
                if (!fed[m]) continue;                              // no rows (all padding): flags stay as they were
                double[] sim = svd[m].similarity(e.getValue(), kBefore.get(m), converged[m].length);
                for (int i = 0; i < sim.length; i++) converged[m][i] = sim[i] >= tau;
            }
            ranks = distribute(ratios(svd, leader, caps), caps, budget);
            if (log != null) {
                int done = 0, leaders = 0;
                for (int m = 0; m < n; m++) if (leader[m] == m) { leaders++; if (t > 0 && hasConverged(converged[m], groupNeed(m, leader, ranks))) done++; }
                log.printf(Locale.ROOT, "eva: calibration batch %d/%d | %d/%d activation SVDs converged (tau %.3f)%n", t + 1, total, done, leaders, tau);
            }
        }
        if (log != null) {
            List<String> open = new ArrayList<>();
            for (int m = 0; m < n; m++)
                if (leader[m] == m && (used < 2 || !hasConverged(converged[m], groupNeed(m, leader, ranks)))) open.add(names.get(m));
            if (!open.isEmpty()) log.println("eva: " + open.size() + " module(s) not converged after " + used + " batch(es), using the latest estimate: " + open);
        }

        LoraConfig.Builder fb = config.toBuilder().clearRankPattern();
        for (int m = 0; m < n; m++) {
            double alpha = config.alphaFor(names.get(m));
            if (adjust) alpha = alpha * ranks[m] / given[m];         // in this order, 6 * 5 / 3 is exactly 10
            if (ranks[m] != config.r()) fb.rankPattern(names.get(m), ranks[m]);
            if (alpha != config.loraAlpha()) fb.alphaPattern(names.get(m), alpha);
        }
        LoraConfig finalConfig = fb.build();
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        StringBuilder summary = new StringBuilder();
        for (int m = 0; m < n; m++) {
            String name = names.get(m);
            IncrementalSvd st = svd[leader[m]];
            int r = ranks[m], in = lins[m].inFeatures();
            double[] top = st.top(r);                              // [r, in]
            float[] a = new float[r * in];
            for (int i = 0; i < r; i++) {
                double var = st.variance(i);
                double f = whiten && var > 0 ? 1 / Math.sqrt(var) : 1;
                for (int j = 0; j < in; j++) a[i * in + j] = (float) (top[i * in + j] * f);
            }
            Tensor at = Tensor.of(a, r, in).requiresGrad(true);
            Tensor bt = Tensor.zeros(lins[m].outFeatures(), r).requiresGrad(true);
            layers.put(name, ctx.layer(finalConfig, name, at, bt, null, null));
            if (m > 0) summary.append(", ");
            summary.append(name).append('=').append(r);
        }
        if (log != null) log.println("eva: ranks (budget " + budget + ", " + used + " batch(es)): " + summary);
        return new Initialised(finalConfig, layers);
    }

    /** The explained-variance ratios [m][i], i < caps[m], of each module's (shared) SVD. */
    private static double[][] ratios(IncrementalSvd[] svd, int[] leader, int[] caps) {
        double[][] out = new double[caps.length][];
        for (int m = 0; m < caps.length; m++) {
            out[m] = new double[caps[m]];
            for (int i = 0; i < caps[m]; i++) out[m][i] = svd[leader[m]].explainedVarianceRatio(i);
        }
        return out;
    }

    /** The largest rank any module sharing leader l's SVD currently needs. */
    private static int groupNeed(int l, int[] leader, int[] ranks) {
        int need = 0;
        for (int m = 0; m < leader.length; m++) if (leader[m] == l) need = Math.max(need, ranks[m]);
        return need;
    }

    private static boolean hasConverged(boolean[] flags, int need) {
        for (int i = 0; i < need; i++) if (!flags[i]) return false;
        return true;
    }

    /**
     * Splits {@code budget} ranks over modules: each gets one, then the remaining {@code budget - modules} go to the
     * largest {@code ratios[m][i]} (1 <= i < caps[m]) across all modules; ties go to the earlier module, then the
     * earlier component, so with non-increasing ratios per module every module's share is a prefix of its components.
     *
     * @param ratios per module, its components' explained-variance ratios [caps[m]], non-increasing
     */
    static int[] distribute(double[][] ratios, int[] caps, int budget) {
        int n = caps.length;
        long capacity = 0;
        int candidates = 0;
        for (int m = 0; m < n; m++) {
            if (caps[m] < 1) throw new IllegalArgumentException("module " + m + " has cap " + caps[m]);
            capacity += caps[m];
            candidates += caps[m] - 1;
        }
        if (budget < n || budget > capacity)
            throw new IllegalArgumentException("rank budget " + budget + " cannot be split over " + n + " modules with caps summing to " + capacity);
        int[] mod = new int[candidates], comp = new int[candidates];
        Integer[] order = new Integer[candidates];
        for (int m = 0, c = 0; m < n; m++)
            for (int i = 1; i < caps[m]; i++, c++) { mod[c] = m; comp[c] = i; order[c] = c; }
        Arrays.sort(order, (x, y) -> {
            int v = Double.compare(ratios[mod[y]][comp[y]], ratios[mod[x]][comp[x]]);
            if (v != 0) return v;
            return mod[x] != mod[y] ? Integer.compare(mod[x], mod[y]) : Integer.compare(comp[x], comp[y]);
        });
        int[] ranks = new int[n];
        Arrays.fill(ranks, 1);
        for (int c = 0; c < budget - n; c++) ranks[mod[order[c]]]++;
        return ranks;
    }

    /** A view of one calibration batch, so batches can run one at a time with a changing set of hooks. */
    private static Calibration single(Calibration cal, int i) {
        return new Calibration() {
            @Override public int batches() { return 1; }
            @Override public Tensor loss(int j) { return cal.loss(i); }
            @Override public boolean[] realTokens(int j) { return cal.realTokens(i); }
        };
    }

    /** Two independent 64-bit hashes of a layer input, to find targets fed the very same activations. */
    private record Fingerprint(int rows, int cols, long h1, long h2) {
        static Fingerprint of(float[] x, int rows, int cols) {
            long h1 = 0xcbf29ce484222325L, h2 = 0x9E3779B97F4A7C15L;
            for (float v : x) {
                int b = Float.floatToRawIntBits(v);
                h1 = (h1 ^ b) * 0x100000001b3L;
                h2 = Long.rotateLeft(h2 + b * 0xC2B2AE3D27D4EB4FL, 31) * 0x9E3779B185EBCA87L;
            }
            return new Fingerprint(rows, cols, h1, h2);
        }
    }
}
