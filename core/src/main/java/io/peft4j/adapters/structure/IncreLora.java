package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.WeakHashMap;

/**
 * IncreLoRA: every module starts with a tiny rank, and during training ranks are added to the modules with the highest
 * importance scores until a total budget is reached. From "IncreLoRA: Incremental Parameter Allocation Method for
 * Parameter-Efficient Fine-tuning" (Zhang, Li, Chen, Jiang, Wang, Qian; arXiv 2308.12043), following the authors'
 * code (FeiyuZhang98/IncreLoRA, {@code loralib/increlora.py}).
 *
 * <p>Form (the paper's SVD-like form): {@code y = W x + (alpha / k) B diag(e) A x}, with {@code k} the module's
 * current rank; each layer is allocated at the config's rank r (its capacity) and only its first ranks are used
 * ({@link LoraLayer#setRankLimit}: the others neither contribute nor take gradients). A and B start as N(0, 0.02^2),
 * e at 0, so the model is unchanged at init.
 *
 * <p>Schedule, as the authors' {@code RankAllocator}:
 * <ul>
 *   <li>Budget: {@code target_rank} ranks per module on average, i.e. {@code target_rank · modules} in all; modules
 *   start at {@code init_rank}. Each allocation gives {@code add_rank} ranks (default target_rank / 2, the authors'
 *   table 2:1, 4:2, 6:3, 8:4) to each of the {@code top_h} modules with the highest scores, every
 *   {@code incre_interval} updates once {@code init_warmup} updates are done, until the budget is used.</li>
 *   <li>Importance: the sensitivity of each module's update, smoothed as in AdaLoRA: {@code I_t = beta1 I_{t-1} +
 *   (1 - beta1) s_t}, {@code U_t = beta2 U_{t-1} + (1 - beta2) |s_t - I_t|}, score {@code I_t · U_t}.</li>
 *   <li>Advance learning: after the first update each module gets {@code add_rank} reserve ranks whose e is fixed at
 *   1e-5 while their A rows and B columns train; a selected module's reserve becomes active (its e trains from 1e-5)
 *   and a fresh reserve is opened. Once the budget is used every reserve is dropped. A newly opened rank gets fresh
 *   N(0, 0.02^2) A and B entries (e = 1e-5 for a reserve, 0 for a rank opened without advance learning).</li>
 * </ul>
 *
 * <p>Choices where peft4j differs or the paper is silent:
 * <ul>
 *   <li>The sensitivity: the authors score a module by {@code sum |Delta W ⊙ dL/dDelta W| / sqrt(out · in)}, which
 *   needs the dense out x in gradient of every module at every step (the cost peft4j never pays). peft4j uses the
 *   same first-order sensitivity taken rank by rank, {@code s = sum_j |e_j · dL/de_j| / sqrt(out · in)}, since
 *   {@code e_j dL/de_j = <Delta W_j, dL/dDelta W>} exactly (the loss change if rank j were removed), computed from the
 *   gradients already there, before the update ({@link #beforeUpdate}).</li>
 *   <li>The budget is never exceeded: a selected module gets {@code min(add_rank, budget left, capacity left)} ranks
 *   (the authors' code can overshoot by a few); modules at capacity are not candidates.</li>
 *   <li>A reserve's e is held at 1e-5 by resetting it after each update (the optimizer's moments for it keep running;
 *   the authors add the parameter to the optimizer only when it activates). Their orthogonality regulariser on A, B
 *   (AdaLoRA's) and their "restart warmup" of the learning rate for new parameters are not applied: peft4j's Trainer
 *   has one loss and one schedule.</li>
 *   <li>An allocation happens after update {@code n} (1-based) when {@code n > init_warmup} and
 *   {@code n % incre_interval == 0}.</li>
 * </ul>
 * The per-module ranks, limits, scalings and score averages are the method's state: saved with the adapter (a reload
 * uses exactly the ranks it had) and in checkpoints (a resume continues the same schedule). A plain-LoRA export keeps
 * only the ranks in use, with a {@code rank_pattern}. Metrics: each module's rank and score, the total rank and the
 * budget.
 */
public final class IncreLora implements AdapterMethod {
    static final float RESERVE_E = 1e-5f;
    private static final String RSLORA_KEY = "rslora";

    /** Per-layer schedule state (layers are per adapter; the method object is shared). */
    static final class Schedule {
        int active;          // ranks in use and trained normally
        int limit;           // active + reserve ranks (the layer's rank limit)
        double alpha;        // numerator of the scaling alpha / k (alpha / sqrt k with rsLoRA)
        double ipt, unc;     // smoothed sensitivity and its uncertainty
    }

    private final Map<LoraLayer, Schedule> states = Collections.synchronizedMap(new WeakHashMap<>());
    private final Map<LoraLayer, Boolean> rsloraOf = Collections.synchronizedMap(new WeakHashMap<>());

    @Override public String name() { return "increlora"; }

    @Override public String summary() { return "ranks start tiny and are added during training to the most important modules, under a total budget"; }

    @Override public String paper() { return "IncreLoRA: Incremental Parameter Allocation Method for Parameter-Efficient Fine-tuning (arXiv 2308.12043)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("init_rank", "1", "rank every module starts with (the config's r is each module's capacity)"),
                new MethodOption("target_rank", "2", "average rank per module at the end: the budget is target_rank x modules"),
                new MethodOption("add_rank", "0", "ranks added to a selected module per allocation (0: target_rank / 2, at least 1)"),
                new MethodOption("top_h", "12", "modules selected per allocation"),
                new MethodOption("init_warmup", "500", "updates before the first allocation"),
                new MethodOption("incre_interval", "500", "updates between allocations"),
                new MethodOption("beta1", "0.85", "EMA coefficient of the sensitivity"),
                new MethodOption("beta2", "0.85", "EMA coefficient of the sensitivity's uncertainty"),
                new MethodOption("advance_learning", "true", "train reserve ranks (e fixed at 1e-5) before they are added"),
                new MethodOption("init_std", "0.02", "std of A and B entries when a rank opens"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        int init = o.integer("init_rank");
        if (init < 1) throw new IllegalArgumentException("method increlora: init_rank must be >= 1, got " + init);
        if (o.number("target_rank") < init) throw new IllegalArgumentException("method increlora: target_rank " + o.string("target_rank") + " is below init_rank " + init);
        addRank(o);
        double std = o.number("init_std");
        LoraConfig c = ctx.config();
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = c.rankFor(module), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            if (r < init) throw new IllegalArgumentException("method increlora: " + module + " has capacity r=" + r + " below init_rank " + init);
            Tensor a = ctx.gaussian(std, r, in).requiresGrad(true);
            Tensor b = ctx.gaussian(std, out, r).requiresGrad(true);
            Tensor eDiag = Tensor.zeros(r).requiresGrad(true);           // [r]: the singular-value-like coefficients
            LoraLayer l = ctx.layer(module, a, b, eDiag, null);
            Schedule m = new Schedule();
            m.alpha = c.alphaFor(module);
            m.active = init;
            m.limit = init;
            states.put(l, m);
            rsloraOf.put(l, c.useRslora());
            applyLimit(l, m);
            layers.put(module, l);
        }
        return new Initialised(c, layers);
    }

    static int addRank(MethodConfig o) {
        int add = o.integer("add_rank");
        if (add < 0) throw new IllegalArgumentException("method increlora: add_rank must be >= 0");
        return add > 0 ? add : Math.max(1, (int) Math.round(o.number("target_rank") / 2));
    }

    private void applyLimit(LoraLayer l, Schedule m) {
        boolean rs = Boolean.TRUE.equals(rsloraOf.get(l));
        l.setRankLimit(m.limit, (float) (rs ? m.alpha / Math.sqrt(m.active) : m.alpha / m.active));
    }

    Schedule state(LoraLayer l) {
        Schedule m = states.get(l);
        if (m == null) throw new IllegalStateException("increlora: layer " + l.base().name() + " has no schedule state (was the adapter built or loaded by peft4j?)");
        return m;
    }

    private static long budget(Map<String, LoraLayer> layers, MethodConfig o) {
        return Math.round(o.number("target_rank") * layers.size());
    }

    private long totalActive(Map<String, LoraLayer> layers) {
        long t = 0;
        for (LoraLayer l : layers.values()) t += state(l).active;
        return t;
    }

    /** Updates each module's smoothed sensitivity from this step's gradients, before the optimizer moves e. */
    @Override
    public void beforeUpdate(int step, Map<String, LoraLayer> layers, MethodConfig options) {
        if (totalActive(layers) >= budget(layers, options)) return;       // allocation is over: the scores are no longer needed
        double b1 = options.number("beta1"), b2 = options.number("beta2");
        for (LoraLayer l : layers.values()) {
            Schedule m = state(l);
            double s = sensitivity(l, m.limit);
            m.ipt = b1 * m.ipt + (1 - b1) * s;
            m.unc = b2 * m.unc + (1 - b2) * Math.abs(s - m.ipt);
        }
    }

    /** {@code sum_{j < limit} |e_j dL/de_j| / sqrt(out · in)}: 0 when e has no gradient yet. */
    static double sensitivity(LoraLayer l, int limit) {
        Tensor e = l.mid();
        if (e.grad() == null) return 0;
        float[] g = e.grad().data();
        double s = 0;
        for (int j = 0; j < limit; j++) s += Math.abs((double) e.getFlat(j) * g[j]);
        return s / Math.sqrt((double) l.base().outFeatures() * l.base().inFeatures());
    }

    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        long budget = budget(layers, options), total = totalActive(layers);
        int add = addRank(options);
        boolean advance = options.flag("advance_learning");
        if (step == 0 && advance && total < budget)                        // the authors add the first reserves after update 0
            for (Map.Entry<String, LoraLayer> e : layers.entrySet()) openReserve(e.getKey(), e.getValue(), state(e.getValue()), add, options);
        int n = step + 1;
        if (total < budget && n > options.integer("init_warmup") && n % Math.max(1, options.integer("incre_interval")) == 0)
            allocate(layers, options, budget - total, add, advance);
        if (totalActive(layers) >= budget) {
            for (LoraLayer l : layers.values()) {                          // budget used: the reserves go
                Schedule m = state(l);
                if (m.limit == m.active) continue;
                for (int j = m.active; j < m.limit; j++) l.mid().data()[l.mid().dataOffset() + j] = 0f;
                m.limit = m.active;
                applyLimit(l, m);
            }
        }
        for (LoraLayer l : layers.values()) {                              // reserves keep e = 1e-5 (advance learning)
            Schedule m = state(l);
            for (int j = m.active; j < m.limit; j++) l.mid().data()[l.mid().dataOffset() + j] = RESERVE_E;
        }
    }

    /** Gives ranks to the top_h modules by score (those with capacity left), never beyond the budget. */
    private void allocate(Map<String, LoraLayer> layers, MethodConfig options, long left, int add, boolean advance) {
        List<Map.Entry<String, LoraLayer>> candidates = new ArrayList<>();
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) if (state(e.getValue()).active < e.getValue().rank()) candidates.add(e);
        candidates.sort((x, y) -> Double.compare(score(state(y.getValue())), score(state(x.getValue()))));   // stable: module order breaks ties
        int k = Math.min(options.integer("top_h"), candidates.size());
        for (int i = 0; i < k && left > 0; i++) {
            String module = candidates.get(i).getKey();
            LoraLayer l = candidates.get(i).getValue();
            Schedule m = state(l);
            int grow = (int) Math.min(Math.min(add, left), l.rank() - m.active);
            if (advance) {
                m.active += grow;                                          // reserve ranks become active (e trains from 1e-5)
                if (m.limit < m.active) { openRanks(module, l, m.limit, m.active, 0f, options); m.limit = m.active; }
                left -= grow;
                if (left > 0) openReserve(module, l, m, add, options);
                else applyLimit(l, m);
            } else {
                openRanks(module, l, m.active, m.active + grow, 0f, options);
                m.active += grow;
                m.limit = m.active;
                left -= grow;
                applyLimit(l, m);
            }
        }
    }

    static double score(Schedule m) { return m.ipt * m.unc; }

    /** Tops the module's reserve up to {@code add} ranks (within capacity) beyond its active ones. */
    private void openReserve(String module, LoraLayer l, Schedule m, int add, MethodConfig options) {
        int target = Math.min(l.rank(), m.active + add);
        if (target > m.limit) {
            openRanks(module, l, m.limit, target, RESERVE_E, options);
            m.limit = target;
        }
        applyLimit(l, m);
    }

    /**
     * Opens ranks {@code [from, to)}: fresh N(0, init_std^2) A rows and B columns (seeded by module and rank, so a
     * resumed run draws the same values) and e = {@code e0}.
     */
    private static void openRanks(String module, LoraLayer l, int from, int to, float e0, MethodConfig options) {
        double std = options.number("init_std");
        Tensor a = l.loraA(), b = l.loraB(), e = l.mid();
        int in = a.dim(1), out = b.dim(0), r = l.rank();
        float[] ad = a.data(), bd = b.data(), ed = e.data();
        for (int j = from; j < to; j++) {
            SplittableRandom rng = new SplittableRandom(module.hashCode() * 1_000_003L + j);
            for (int i = 0; i < in; i++) ad[a.dataOffset() + j * in + i] = gaussian(rng, std);
            for (int o = 0; o < out; o++) bd[b.dataOffset() + o * r + j] = gaussian(rng, std);
            ed[e.dataOffset() + j] = e0;
        }
    }

    private static float gaussian(SplittableRandom rng, double std) {
        double u1 = rng.nextDouble(), u2 = rng.nextDouble();
        return (float) (std * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2));
    }

    @Override
    public Map<String, Double> report(Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, Double> out = new LinkedHashMap<>();
        long total = 0;
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            Schedule m = state(e.getValue());
            out.put("rank/" + e.getKey(), (double) m.active);
            out.put("score/" + e.getKey(), score(m));
            total += m.active;
        }
        out.put("total_rank", (double) total);
        out.put("budget", (double) budget(layers, options));
        return out;
    }

    /** Per module: {@code <module>.active}, {@code .limit}, {@code .alpha}, {@code .ipt}, {@code .unc}; and {@code rslora}. */
    @Override
    public Map<String, String> state(Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, String> s = new LinkedHashMap<>();
        boolean rs = false;
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            Schedule m = state(e.getValue());
            String k = e.getKey();
            s.put(k + ".active", Integer.toString(m.active));
            s.put(k + ".limit", Integer.toString(m.limit));
            s.put(k + ".alpha", Double.toString(m.alpha));
            s.put(k + ".ipt", Double.toString(m.ipt));
            s.put(k + ".unc", Double.toString(m.unc));
            rs |= Boolean.TRUE.equals(rsloraOf.get(e.getValue()));
        }
        s.put(RSLORA_KEY, Boolean.toString(rs));
        return s;
    }

    @Override
    public void restore(Map<String, String> state, Map<String, LoraLayer> layers, MethodConfig options) {
        boolean rs = Boolean.parseBoolean(state.getOrDefault(RSLORA_KEY, "false"));
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            String k = e.getKey();
            LoraLayer l = e.getValue();
            Schedule m = new Schedule();
            if (state.containsKey(k + ".active")) {
                try {
                    m.active = Integer.parseInt(state.get(k + ".active"));
                    m.limit = Integer.parseInt(state.get(k + ".limit"));
                    m.alpha = Double.parseDouble(state.get(k + ".alpha"));
                    m.ipt = Double.parseDouble(state.getOrDefault(k + ".ipt", "0"));
                    m.unc = Double.parseDouble(state.getOrDefault(k + ".unc", "0"));
                } catch (NumberFormatException | NullPointerException ex) {
                    throw new IllegalArgumentException("method increlora: state of " + k + " is malformed (" + ex.getMessage() + ")", ex);
                }
                if (m.active < 1 || m.limit < m.active || m.limit > l.rank())
                    throw new IllegalArgumentException("method increlora: state of " + k + " gives rank " + m.active + ", limit " + m.limit + " for capacity " + l.rank());
            } else {                                                      // no saved schedule: keep the layer as it is
                m.active = m.limit = l.rankLimit();
                m.alpha = rs ? l.scaling() * Math.sqrt(m.active) : l.scaling() * m.active;
            }
            states.put(l, m);
            rsloraOf.put(l, rs);
            applyLimit(l, m);
        }
    }
}
