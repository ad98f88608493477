package io.peft4j.kernels;

/** Plain-loop twin of {@link VectorNnKernels}: the reference the differential tests compare against. */
final class ScalarNnKernels implements NnKernels {

    @Override
    public float max(float[] x, int xo, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) m = Math.max(m, x[xo + i]);
        return m;
    }

    @Override
    public float sum(float[] x, int xo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += x[xo + i];
        return s;
    }

    @Override
    public float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s = Math.fma(a[ao + i], b[bo + i], s);
        return s;
    }

    @Override
    public void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] = Math.fma(alpha, x[xo + i], y[yo + i]);
    }

    @Override
    public void scale(float s, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] *= s;
    }

    @Override
    public void addScalar(float[] x, int xo, float c, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] = x[xo + i] + c;
    }

    @Override
    public float sumExp(float[] x, int xo, float shift, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += (float) Math.exp(x[xo + i] - shift);
        return s;
    }

    @Override
    public float expStore(float[] x, int xo, float shift, float[] y, int yo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[xo + i] - shift);
            y[yo + i] = e;
            s += e;
        }
        return s;
    }

    @Override
    public void addExp(float alpha, float[] x, int xo, float shift, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] = Math.fma(alpha, (float) Math.exp(x[xo + i] - shift), y[yo + i]);
    }

    @Override
    public void softmaxBackward(float[] y, int yo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        float d = dot(dy, dyo, y, yo, n);
        for (int i = 0; i < n; i++) dx[dxo + i] += y[yo + i] * (dy[dyo + i] - d);
    }

    @Override
    public void logSoftmaxBackward(float[] y, int yo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        float s = sum(dy, dyo, n);
        for (int i = 0; i < n; i++) dx[dxo + i] += dy[dyo + i] - (float) Math.exp(y[yo + i]) * s;
    }

    @Override
    public float rmsNorm(float[] x, int xo, float[] w, int wo, float[] y, int yo, int n, float eps) {
        float ss = 0;
        for (int i = 0; i < n; i++) ss = Math.fma(x[xo + i], x[xo + i], ss);
        float rstd = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) {
            float v = x[xo + i] * rstd;
            y[yo + i] = w == null ? v : v * w[wo + i];
        }
        return rstd;
    }

    @Override
    public void rmsNormBackward(float[] x, int xo, float[] w, int wo, float[] dy, int dyo, float rstd,
                                float[] dx, int dxo, float[] dw, int dwo, int n) {
        if (dx != null) {
            float gx = 0;   // sum(g * x)
            for (int i = 0; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                gx = Math.fma(g, x[xo + i], gx);
            }
            float c = gx * rstd * rstd / n;   // mean(g * xhat) / rstd
            for (int i = 0; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                dx[dxo + i] += rstd * (g - x[xo + i] * c);
            }
        }
        if (dw != null)
            for (int i = 0; i < n; i++) dw[dwo + i] = Math.fma(dy[dyo + i], x[xo + i] * rstd, dw[dwo + i]);
    }

    @Override
    public void layerNorm(float[] x, int xo, float[] w, int wo, float[] b, int bo, float[] y, int yo, int n,
                          float eps, float[] stats, int so) {
        float mean = sum(x, xo, n) / n;
        float var = 0;
        for (int i = 0; i < n; i++) {
            float c = x[xo + i] - mean;
            var = Math.fma(c, c, var);
        }
        float rstd = (float) (1.0 / Math.sqrt(var / n + eps));
        for (int i = 0; i < n; i++) {
            float v = (x[xo + i] - mean) * rstd;
            if (w != null) v *= w[wo + i];
            if (b != null) v += b[bo + i];
            y[yo + i] = v;
        }
        stats[so] = mean;
        stats[so + 1] = rstd;
    }

    @Override
    public void layerNormBackward(float[] x, int xo, float[] w, int wo, float[] dy, int dyo, float mean, float rstd,
                                  float[] dx, int dxo, float[] dw, int dwo, float[] db, int dbo, int n) {
        if (dx != null) {
            float gs = 0, gxh = 0;
            for (int i = 0; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                gs += g;
                gxh = Math.fma(g, (x[xo + i] - mean) * rstd, gxh);
            }
            float mg = gs / n, mgx = gxh / n;
            for (int i = 0; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                float xh = (x[xo + i] - mean) * rstd;
                dx[dxo + i] += rstd * (g - mg - xh * mgx);
            }
        }
        if (dw != null)
            for (int i = 0; i < n; i++) dw[dwo + i] = Math.fma(dy[dyo + i], (x[xo + i] - mean) * rstd, dw[dwo + i]);
        if (db != null)
            for (int i = 0; i < n; i++) db[dbo + i] += dy[dyo + i];
    }

    @Override
    public void gelu(boolean tanh, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            if (tanh) {
                float t = (float) Math.tanh(NnMath.GELU_K * Math.fma(NnMath.GELU_C * v, v * v, v));
                y[yo + i] = 0.5f * v * (1f + t);
            } else {
                y[yo + i] = v * NnMath.normalCdf(v);
            }
        }
    }

    @Override
    public void geluBackward(boolean tanh, float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        for (int i = 0; i < n; i++) {
            float v = Math.max(-NnMath.GELU_GRAD_CLAMP, Math.min(NnMath.GELU_GRAD_CLAMP, x[xo + i])), d;
            if (tanh) {
                float v2 = v * v;
                float t = (float) Math.tanh(NnMath.GELU_K * Math.fma(NnMath.GELU_C * v, v2, v));
                d = 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * NnMath.GELU_K * Math.fma(3f * NnMath.GELU_C, v2, 1f);
            } else {
                float pdf = NnMath.INV_SQRT_2PI * (float) Math.exp(-0.5f * v * v);
                d = Math.fma(v, pdf, NnMath.normalCdf(v));
            }
            dx[dxo + i] = Math.fma(dy[dyo + i], d, dx[dxo + i]);
        }
    }

    @Override
    public void silu(float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] = x[xo + i] * NnMath.sigmoid(x[xo + i]);
    }

    @Override
    public void siluBackward(float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[xo + i], s = NnMath.sigmoid(v);
            dx[dxo + i] = Math.fma(dy[dyo + i], s * Math.fma(v, 1f - s, 1f), dx[dxo + i]);
        }
    }

    @Override
    public void swiglu(float[] g, int go, float[] u, int uo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] = g[go + i] * NnMath.sigmoid(g[go + i]) * u[uo + i];
    }

    @Override
    public void swigluBackward(float[] g, int go, float[] u, int uo, float[] dy, int dyo, float[] dg, int dgo,
                               float[] du, int duo, int n) {
        for (int i = 0; i < n; i++) {
            float v = g[go + i], s = NnMath.sigmoid(v), d = dy[dyo + i];
            if (dg != null) dg[dgo + i] = Math.fma(d * u[uo + i], s * Math.fma(v, 1f - s, 1f), dg[dgo + i]);
            if (du != null) du[duo + i] = Math.fma(d, v * s, du[duo + i]);
        }
    }

    @Override
    public void ropeHalf(float[] x, int xo, float[] y, int yo, int half, float[] cos, float[] sin, int co,
                         boolean inverse, boolean accumulate) {
        for (int i = 0; i < half; i++) {
            float c = cos[co + i], s = inverse ? -sin[co + i] : sin[co + i];
            float a = x[xo + i], b = x[xo + half + i];
            float r0 = a * c - b * s, r1 = b * c + a * s;
            if (accumulate) {
                y[yo + i] += r0;
                y[yo + half + i] += r1;
            } else {
                y[yo + i] = r0;
                y[yo + half + i] = r1;
            }
        }
    }

    @Override
    public void ropeInterleaved(float[] x, int xo, float[] y, int yo, int rot, float[] cos2, float[] sin2, int co,
                                boolean inverse, boolean accumulate) {
        for (int i = 0; i < rot; i += 2) {
            float c = cos2[co + i], s = inverse ? -sin2[co + i] : sin2[co + i];
            float a = x[xo + i], b = x[xo + i + 1];
            float r0 = a * c - b * s, r1 = b * c + a * s;
            if (accumulate) {
                y[yo + i] += r0;
                y[yo + i + 1] += r1;
            } else {
                y[yo + i] = r0;
                y[yo + i + 1] = r1;
            }
        }
    }

    @Override
    public void gemmAcc(int rows, int k, int n, float alpha, float[] x, int xo, int ldx, float[] m, int mo, int ldm,
                        float[] y, int yo, int ldy) {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) {
                float s = 0;
                for (int d = 0; d < k; d++) s = Math.fma(x[xo + r * ldx + d], m[mo + d * ldm + j], s);
                y[yo + r * ldy + j] = Math.fma(alpha, s, y[yo + r * ldy + j]);
            }
    }
}
