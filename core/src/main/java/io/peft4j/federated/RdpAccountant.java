package io.peft4j.federated;

import java.util.Arrays;

/**
 * Rényi-DP accountant of the Poisson-subsampled Gaussian mechanism (the mechanism DP-SGD runs each step: every example
 * enters the batch independently with probability {@code q}, the clipped per-example gradients are summed, and
 * N(0, sigma^2 C^2) noise is added). From Mironov, Talwar and Zhang, "Rényi Differential Privacy of the Sampled Gaussian
 * Mechanism" (2019), under add-or-remove-one adjacency:
 *
 * <ul>
 *   <li>integer orders alpha: {@code A_alpha = sum_k binom(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2))}
 *       (their section 3.3, the binomial sum), evaluated as a log-sum-exp so that large alpha and small sigma neither
 *       overflow nor underflow;</li>
 *   <li>fractional orders: the two convergent series of the same section, split at
 *       {@code z0 = sigma^2 log(1/q - 1) + 1/2}, with generalised binomial coefficients and log erfc terms, summed
 *       until both terms fall below e^-30 of the running value;</li>
 *   <li>{@code RDP(alpha) = log(A_alpha) / (alpha - 1)} per step; T steps compose to T times that (RDP composes
 *       additively at each order).</li>
 * </ul>
 *
 * <p>Conversion to (epsilon, delta)-DP, minimised over the orders tracked: {@link Conversion#IMPROVED} (the default) is
 * Balle et al. 2020 ("Hypothesis testing interpretations and Rényi DP", Theorem 21), the one Opacus and Google's
 * dp_accounting use: {@code eps = rdp + log((alpha-1)/alpha) - (log delta + log alpha) / (alpha - 1)};
 * {@link Conversion#CLASSIC} is Mironov 2017's Proposition 3, {@code eps = rdp + log(1/delta) / (alpha - 1)}, which
 * older TF-Privacy / Opacus releases (and the "moments accountant" numbers of the literature) printed. The improved one
 * is never larger.
 *
 * <p>Mutable: {@link #step} adds steps; one instance tracks one privacy unit (one client's data).
 */
public final class RdpAccountant {
    /** The orders Opacus tracks by default: 1.1 .. 10.9 in tenths, then 12 .. 63. */
    public static final double[] DEFAULT_ORDERS = defaultOrders();

    /** How an RDP curve is turned into an (epsilon, delta) guarantee. */
    public enum Conversion { CLASSIC, IMPROVED }

    private final double[] orders;   // [k] RDP orders alpha > 1
    private final double[] rdp;      // [k] accumulated RDP at each order
    private long steps;

    public RdpAccountant() { this(DEFAULT_ORDERS); }

    public RdpAccountant(double[] orders) {
        for (double a : orders)
            if (!(a > 1)) throw new IllegalArgumentException("RDP orders must be > 1, got " + a + " in " + Arrays.toString(orders));
        this.orders = orders.clone();
        this.rdp = new double[orders.length];
    }

    private static double[] defaultOrders() {
        double[] o = new double[99 + 52];
        for (int x = 1; x <= 99; x++) o[x - 1] = 1 + x / 10.0;
        for (int a = 12; a < 64; a++) o[99 + a - 12] = a;
        return o;
    }

    /** Composes {@code count} steps of the sampled Gaussian mechanism with sampling rate {@code q} and noise multiplier {@code sigma}. */
    public RdpAccountant step(double q, double sigma, long count) {
        if (count < 0) throw new IllegalArgumentException("step count must be >= 0, got " + count);
        if (count == 0) return this;
        for (int i = 0; i < orders.length; i++) rdp[i] += count * rdp(q, sigma, orders[i]);
        steps += count;
        return this;
    }

    public long steps() { return steps; }

    /** The accumulated RDP at each tracked order (a copy). */
    public double[] rdp() { return rdp.clone(); }

    public double[] orders() { return orders.clone(); }

    /** The smallest epsilon over the tracked orders at {@code delta} with the improved conversion. */
    public double epsilon(double delta) { return epsilon(delta, Conversion.IMPROVED); }

    public double epsilon(double delta, Conversion conv) { return epsilon(orders, rdp, delta, conv); }

    /** The (epsilon, delta) conversion of an RDP curve, minimised over its orders. */
    public static double epsilon(double[] orders, double[] rdp, double delta, Conversion conv) {
        if (!(delta > 0 && delta < 1)) throw new IllegalArgumentException("delta must be in (0, 1), got " + delta);
        double best = Double.POSITIVE_INFINITY;
        for (int i = 0; i < orders.length; i++) {
            double a = orders[i], r = rdp[i];
            if (Double.isInfinite(r) || Double.isNaN(r)) continue;
            double eps = conv == Conversion.CLASSIC
                    ? r - Math.log(delta) / (a - 1)
                    : r + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
            best = Math.min(best, eps);
        }
        return Math.max(0, best);
    }

    /**
     * Epsilon after {@code steps} steps at (q, sigma), on the default orders with the improved conversion: the
     * function a noise search inverts.
     */
    public static double epsilon(double q, double sigma, long steps, double delta) {
        return new RdpAccountant().step(q, sigma, steps).epsilon(delta);
    }

    /**
     * The smallest noise multiplier (to relative precision 1e-4) whose epsilon after {@code steps} steps at sampling
     * rate {@code q} is at most {@code targetEpsilon} at {@code delta}: bisection, valid because epsilon falls
     * monotonically as sigma grows.
     */
    public static double noiseForEpsilon(double targetEpsilon, double delta, double q, long steps) {
        if (!(targetEpsilon > 0)) throw new IllegalArgumentException("target epsilon must be > 0, got " + targetEpsilon);
        double lo = 0.01, hi = 1;
        while (epsilon(q, hi, steps, delta) > targetEpsilon) {
            lo = hi;
            hi *= 2;
            if (hi > 1e6) throw new IllegalArgumentException("no noise multiplier up to 1e6 reaches epsilon " + targetEpsilon + " at delta " + delta);
        }
        if (epsilon(q, lo, steps, delta) <= targetEpsilon) return lo;
        while ((hi - lo) / hi > 1e-4) {
            double mid = 0.5 * (lo + hi);
            if (epsilon(q, mid, steps, delta) > targetEpsilon) lo = mid; else hi = mid;
        }
        return hi;
    }

    // ------------------------------------------------------------------------------------------------ one step

    /** RDP at order {@code alpha} of one step of the Poisson-subsampled Gaussian mechanism. */
    public static double rdp(double q, double sigma, double alpha) {
        if (!(q >= 0 && q <= 1)) throw new IllegalArgumentException("sampling rate must be in [0, 1], got " + q);
        if (!(sigma >= 0)) throw new IllegalArgumentException("noise multiplier must be >= 0, got " + sigma);
        if (q == 0) return 0;
        if (sigma == 0 || Double.isInfinite(alpha)) return Double.POSITIVE_INFINITY;
        if (q == 1) return alpha / (2 * sigma * sigma);                       // the plain Gaussian mechanism
        double logA = alpha == Math.rint(alpha) ? logAInt(q, sigma, (long) alpha) : logAFrac(q, sigma, alpha);
        return logA / (alpha - 1);
    }

    /** log A_alpha for integer alpha: the binomial sum, as a log-sum-exp. */
    static double logAInt(double q, double sigma, long alpha) {
        double logQ = Math.log(q), log1mQ = Math.log1p(-q), twoS2 = 2 * sigma * sigma;
        double acc = Double.NEGATIVE_INFINITY;
        for (long k = 0; k <= alpha; k++) {
            double term = logBinom(alpha, k) + k * logQ + (alpha - k) * log1mQ + (k * k - k) / twoS2;
            acc = logAdd(acc, term);
        }
        return acc;
    }

    /** log A_alpha for fractional alpha: the two series split at z0 (Mironov, Talwar, Zhang 2019, section 3.3). */
    static double logAFrac(double q, double sigma, double alpha) {
        double pos0 = Double.NEGATIVE_INFINITY, neg0 = Double.NEGATIVE_INFINITY;   // signed sums kept as log|.| of each sign
        double pos1 = Double.NEGATIVE_INFINITY, neg1 = Double.NEGATIVE_INFINITY;
        double z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
        double logQ = Math.log(q), log1mQ = Math.log1p(-q), twoS2 = 2 * sigma * sigma, sqrt2S = Math.sqrt(2) * sigma;
        double logCoef = 0;        // log |binom(alpha, i)|
        boolean coefPositive = true;
        for (int i = 0; ; i++) {
            if (i > 0) {
                // binom(alpha, i) = binom(alpha, i-1) * (alpha - i + 1) / i
                double f = (alpha - i + 1) / i;
                if (f == 0) break;                                            // cannot happen for fractional alpha
                logCoef += Math.log(Math.abs(f));
                if (f < 0) coefPositive = !coefPositive;
            }
            double j = alpha - i;
            double logT0 = logCoef + i * logQ + j * log1mQ;
            double logT1 = logCoef + j * logQ + i * log1mQ;
            double logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2S);
            double logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2S);
            double s0 = logT0 + (i * (double) i - i) / twoS2 + logE0;
            double s1 = logT1 + (j * j - j) / twoS2 + logE1;
            if (coefPositive) { pos0 = logAdd(pos0, s0); pos1 = logAdd(pos1, s1); }
            else { neg0 = logAdd(neg0, s0); neg1 = logAdd(neg1, s1); }
            double running = logAdd(logSub(pos0, neg0), logSub(pos1, neg1));
            if (i > alpha + 1 && Math.max(s0, s1) < running - 30) break;     // the tail is negligible
            if (i > 100_000) throw new IllegalStateException("fractional RDP series did not converge (q " + q + ", sigma " + sigma + ", alpha " + alpha + ")");
        }
        return logAdd(logSub(pos0, neg0), logSub(pos1, neg1));
    }

    // ------------------------------------------------------------------------------------------------ log-space math

    static double logAdd(double a, double b) {
        if (a == Double.NEGATIVE_INFINITY) return b;
        if (b == Double.NEGATIVE_INFINITY) return a;
        double m = Math.max(a, b);
        return m + Math.log1p(Math.exp(Math.min(a, b) - m));
    }

    /** log(e^a - e^b) for a >= b; a tiny negative difference from rounding gives -infinity. */
    static double logSub(double a, double b) {
        if (b == Double.NEGATIVE_INFINITY) return a;
        if (b >= a) return Double.NEGATIVE_INFINITY;
        return a + Math.log(-Math.expm1(b - a));
    }

    static double logBinom(long n, long k) {
        return logGamma(n + 1.0) - logGamma(k + 1.0) - logGamma(n - k + 1.0);
    }

    /** log Gamma(x) for x > 0: Lanczos (g = 7, 9 terms), about 1e-15 relative; exact sums for small integers. */
    static double logGamma(double x) {
        if (x == Math.rint(x) && x <= 30) {
            double f = 0;
            for (int i = 2; i < x; i++) f += Math.log(i);
            return f;
        }
        if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
        double[] c = {0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
                -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};
        x -= 1;
        double a = c[0];
        double t = x + 7.5;
        for (int i = 1; i < 9; i++) a += c[i] / (x + i);
        return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
    }

    /**
     * log erfc(x), accurate for any x: 2 - erfc(-x) for negative x, the Maclaurin series of erf for small x, and the
     * continued fraction {@code erfc(x) = e^{-x^2}/sqrt(pi) · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))} for larger x,
     * kept in log form so that e^{-x^2} never underflows.
     */
    static double logErfc(double x) {
        if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
        if (x < 1.5) {
            double sum = 0, term = x;          // x^(2n+1) (-1)^n / n!
            for (int n = 0; n < 200; n++) {
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
                term *= -x * x / (n + 1);
            }
            return Math.log1p(-2 / Math.sqrt(Math.PI) * sum);
        }
        // Lentz's algorithm for the continued fraction K = 1/(x + a1/(x + a2/(x + ...))), a_n = n/2
        double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int n = 1; n < 5000; n++) {
            double an = n / 2.0;
            d = x + an * d;
            d = d == 0 ? tiny : d;
            c = x + an / c;
            c = c == 0 ? tiny : c;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.abs(delta - 1) < 1e-16) break;
        }
        return -x * x - 0.5 * Math.log(Math.PI) - Math.log(f);
    }
}
