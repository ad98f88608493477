package io.peft4j.unlearn;

import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.Trainer;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * GS-LoRA's continual-forgetting objective, and GS-LoRA++'s prototype terms, as a {@link Trainer.Objective}. Each
 * step takes the Trainer's batch of data to keep and draws one batch of data to forget from its own batcher:
 * <pre>
 *   L = CE(retain) + beta · max(0, BND - CE(forget))                                   (GS-LoRA)
 *     + w_f · max(0, BND_pro - KL_f) + w_r · KL_r                                      (GS-LoRA++, prototype=true)
 * </pre>
 * (the group lasso of GS-LoRA is not here: {@code gs-lora} applies it as a proximal step after each update). The
 * forgetting term raises the cross-entropy of the forgotten data (the batch mean, as the authors' code) only up to
 * {@code BND}: past it the term and its gradient are exactly zero, so the loss cannot diverge, unlike plain
 * gradient ascent. {@code KL_x} is the divergence {@code KL(softmax(p_y) || softmax(f))} between the softmax of the
 * class prototype {@code p_y} ({@link ClassPrototypes}, from the model before forgetting) and the softmax of the
 * row's feature {@code f}, over the feature dimension, averaged over the batch: the authors' {@code
 * get_prototype_loss} (distance "kl", its default; "l2", the mean squared difference, is their other choice). For
 * forgotten rows it is pushed up to {@code BND_pro}, for kept rows pulled down.
 *
 * <p>Works on a sequence classifier (class labels; prototypes available) and on a causal LM (next-token labels; the
 * plain GS-LoRA loss only). The options live with the {@code gs-lora} method ({@link #settings}), so {@code --opt}
 * sets them, but the objective works with any adapter method.
 */
public final class ForgettingObjective implements Trainer.Objective {
    /**
     * The objective's hyper-parameters.
     *
     * @param beta          weight of the bounded forgetting term
     * @param bnd           cross-entropy bound of the forgotten data (BND)
     * @param prototype     add GS-LoRA++'s prototype terms
     * @param protoForget   weight of the forgotten rows' prototype term (w_f)
     * @param protoRetain   weight of the kept rows' prototype term (w_r)
     * @param protoBnd      bound of the forgotten rows' prototype divergence (BND_pro)
     * @param protoDistance "kl" or "l2"
     */
    public record Settings(double beta, double bnd, boolean prototype, double protoForget, double protoRetain, double protoBnd, String protoDistance) {
        public Settings {
            if (!(beta >= 0) || !(bnd > 0) || !(protoForget >= 0) || !(protoRetain >= 0) || !(protoBnd > 0))
                throw new IllegalArgumentException("forgetting objective: beta, proto weights must be >= 0 and the bounds > 0, got " + this);
            if (!protoDistance.equals("kl") && !protoDistance.equals("l2"))
                throw new IllegalArgumentException("forgetting objective: proto_distance must be kl or l2, got '" + protoDistance + "'");
        }
    }

    /** The objective's settings from a {@code gs-lora} method config (its defaults fill what was not given). */
    public static Settings settings(MethodConfig m) {
        return new Settings(m.number("beta"), m.number("bnd"), m.flag("prototype"), m.number("proto_forget_weight"),
                m.number("proto_retain_weight"), m.number("proto_bnd"), m.string("proto_distance"));
    }

    private final CausalLM lm;                  // causal-LM mode (clf == null)
    private final SequenceClassifier clf;       // classification mode, or null
    private final Batcher forget;
    private final Settings s;
    private final ClassPrototypes prototypes;   // null unless s.prototype()
    private final AdapterRuntime runtime;       // carries per-token tags of the forget batch; may be null
    private final Map<String, Double> last = new LinkedHashMap<>();

    /**
     * @param clf        the classifier being edited, or null to train {@code lm} on next-token labels
     * @param forget     batches of the data to forget (shuffled, endless)
     * @param prototypes class prototypes of the original model; required when {@code s.prototype()}
     * @param runtime    the adapters' runtime (per-token modality tags), or null
     */
    public ForgettingObjective(CausalLM lm, SequenceClassifier clf, Batcher forget, Settings s, ClassPrototypes prototypes, AdapterRuntime runtime) {
        if (s.prototype() && clf == null) throw new IllegalArgumentException("GS-LoRA++'s prototype terms need a sequence classifier (class labels), not a causal LM");
        if (s.prototype() && prototypes == null) throw new IllegalArgumentException("prototype=true needs class prototypes");
        this.lm = lm;
        this.clf = clf;
        this.forget = forget;
        this.s = s;
        this.prototypes = prototypes;
        this.runtime = runtime;
    }

    @Override
    public Tensor loss(Batch retain) {
        last.clear();
        Part r = part(retain);
        Batch fb = forget.next();
        if (runtime != null) runtime.tokenTags(fb.tags());
        Part f;
        try {
            f = part(fb);
        } finally {
            if (runtime != null) runtime.tokenTags(retain.tags());
        }
        Tensor bounded = bounded(f.ce, (float) s.bnd());
        Tensor total = TensorOps.add(r.ce, TensorOps.scale(bounded, (float) s.beta()));
        last.put("retain_ce", (double) r.ce.getFlat(0));
        last.put("forget_ce", (double) f.ce.getFlat(0));
        last.put("forget_term", s.beta() * bounded.getFlat(0));
        if (clf != null) {
            last.put("retain_batch_acc", accuracy(r.logits, retain.classLabels()));
            last.put("forget_batch_acc", accuracy(f.logits, fb.classLabels()));
        }
        if (s.prototype()) {
            Tensor pf = prototypeDistance(f.features, prototypes.rows(fb.classLabels()), s.protoDistance());
            Tensor pr = prototypeDistance(r.features, prototypes.rows(retain.classLabels()), s.protoDistance());
            Tensor pfTerm = TensorOps.scale(bounded(pf, (float) s.protoBnd()), (float) s.protoForget());
            Tensor prTerm = TensorOps.scale(pr, (float) s.protoRetain());
            total = TensorOps.add(total, TensorOps.add(pfTerm, prTerm));
            last.put("proto_forget", (double) pf.getFlat(0));
            last.put("proto_retain", (double) pr.getFlat(0));
        }
        last.put("total", (double) total.getFlat(0));
        return total;
    }

    @Override
    public Map<String, Double> report() { return Map.copyOf(last); }

    /** One batch's cross-entropy (and, for a classifier, its features and logits). */
    private record Part(Tensor ce, Tensor features, Tensor logits) {}

    private Part part(Batch b) {
        if (clf == null) {
            Tensor logits = lm.forward(b.ids(), b.batch(), b.seqLen(), null);
            return new Part(NnOps.crossEntropy(logits, b.labels(), Example.IGNORE), null, null);
        }
        if (b.classLabels() == null) throw new IllegalArgumentException("the forgetting objective on a classifier needs class labels");
        Tensor feats = ClassPrototypes.features(clf, b);                 // [B, d]
        Tensor logits = clf.score().forward(feats);                      // [B, C]
        return new Part(NnOps.crossEntropy(logits, b.classLabels(), Example.IGNORE), feats, logits);
    }

    private static double accuracy(Tensor logits, int[] labels) {
        float[] l = logits.toFloatArray();
        int c = logits.dim(1), hits = 0;
        for (int r = 0; r < labels.length; r++) {
            int best = 0;
            for (int j = 1; j < c; j++) if (l[r * c + j] > l[r * c + best]) best = j;
            if (best == labels[r]) hits++;
        }
        return (double) hits / labels.length;
    }

    /**
     * {@code max(0, bound - x)} elementwise, recorded: the gradient is {@code -1} where {@code x < bound} and exactly
     * 0 where {@code x >= bound} (as PyTorch's ReLU at 0), so a term that reached its bound stops pushing.
     */
    public static Tensor bounded(Tensor x, float bound) {
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset();
        float[] y = new float[(int) x.numel()];
        for (int i = 0; i < y.length; i++) y[i] = Math.max(0f, bound - xd[xo + i]);
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            float[] gd = g.data(), ga = x.gradBuffer().data();
            int go = g.dataOffset();
            for (int i = 0; i < y.length; i++) if (y[i] > 0f) ga[i] -= gd[go + i];
        }, x);
    }

    /**
     * The batch-mean distance between each row's feature and its class prototype (a constant): {@code "kl"} is
     * {@code KL(softmax(p) || softmax(f))} over the feature dimension, {@code "l2"} the mean squared difference.
     *
     * @param features [B, d], recorded
     * @param protos   [B, d] constant
     */
    public static Tensor prototypeDistance(Tensor features, Tensor protos, String distance) {
        int b = features.dim(0);
        if (distance.equals("l2")) {
            Tensor diff = TensorOps.sub(features, protos);
            return TensorOps.mean(TensorOps.mul(diff, diff), false);
        }
        Tensor logQ = NnOps.logSoftmax(features);                      // [B, d]
        float[] p = NnOps.softmax(protos).toFloatArray(), logP = NnOps.logSoftmax(protos).toFloatArray();
        double negEntropy = 0;                                          // sum p log p over the batch: constant
        for (int i = 0; i < p.length; i++) if (p[i] > 0) negEntropy += (double) p[i] * logP[i];
        Tensor cross = TensorOps.sum(TensorOps.mul(Tensor.of(p, protos.shape()), logQ), false);   // sum p log q
        return TensorOps.addScalar(TensorOps.scale(cross, -1f / b), (float) (negEntropy / b));
    }
}
