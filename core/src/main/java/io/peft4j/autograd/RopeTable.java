package io.peft4j.autograd;

/**
 * Precomputed RoPE cos/sin for positions [0, maxPositions) and a head dimension, in one of the two layouts:
 * {@link Layout#ROTATE_HALF} (HF Llama: pairs (i, i + Dh/2)) or {@link Layout#INTERLEAVED} (llama2.c / Meta:
 * pairs (2i, 2i + 1)). Frequencies may be rescaled (rope_scaling) by the models layer before construction.
 */
public final class RopeTable {
    public enum Layout { ROTATE_HALF, INTERLEAVED }

    public final Layout layout;
    public final int headDim;        // Dh; rotated dims = rotaryDim <= Dh
    public final int rotaryDim;
    public final int maxPositions;
    public final float[] cos;        // [maxPositions, rotaryDim / 2]
    public final float[] sin;        // [maxPositions, rotaryDim / 2]
    /** INTERLEAVED only (else null): each pair's cos stored twice, so a kernel reads it lane by lane. */
    public final float[] cosPairs;   // [maxPositions, rotaryDim]
    public final float[] sinPairs;   // [maxPositions, rotaryDim]

    /** Standard RoPE with base {@code theta} and inverse frequencies theta^(-2i/rotaryDim). */
    public static RopeTable of(Layout layout, int headDim, int maxPositions, double theta) {
        return of(layout, headDim, headDim, maxPositions, theta);
    }

    /**
     * Partial rotary embedding (GPT-NeoX, Phi): only the first {@code rotaryDim} dims of each head rotate, with
     * inverse frequencies theta^(-2i/rotaryDim); dims >= rotaryDim pass through.
     */
    public static RopeTable of(Layout layout, int headDim, int rotaryDim, int maxPositions, double theta) {
        double[] inv = new double[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = Math.pow(theta, -2.0 * i / rotaryDim);
        return new RopeTable(layout, headDim, rotaryDim, maxPositions, inv);
    }

    /** RoPE with explicit inverse frequencies [rotaryDim / 2] (after any rope_scaling). */
    public RopeTable(Layout layout, int headDim, int rotaryDim, int maxPositions, double[] invFreq) {
        if (rotaryDim % 2 != 0 || rotaryDim > headDim || invFreq.length != rotaryDim / 2)
            throw new IllegalArgumentException("bad RoPE dims: headDim " + headDim + ", rotaryDim " + rotaryDim + ", " + invFreq.length + " frequencies");
        this.layout = layout;
        this.headDim = headDim;
        this.rotaryDim = rotaryDim;
        this.maxPositions = maxPositions;
        int half = rotaryDim / 2;
        this.cos = new float[maxPositions * half];
        this.sin = new float[maxPositions * half];
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < half; i++) {
                double a = p * invFreq[i];
                cos[p * half + i] = (float) Math.cos(a);
                sin[p * half + i] = (float) Math.sin(a);
            }
        if (layout == Layout.INTERLEAVED) {
            cosPairs = new float[maxPositions * rotaryDim];
            sinPairs = new float[maxPositions * rotaryDim];
            for (int j = 0; j < cosPairs.length; j++) {
                cosPairs[j] = cos[j >> 1];
                sinPairs[j] = sin[j >> 1];
            }
        } else {
            cosPairs = null;
            sinPairs = null;
        }
    }
}
