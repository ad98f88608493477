package io.peft4j.report;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A small PNG line chart (loss curves, method comparisons) drawn with Java2D, headless. If the machine has no
 * fonts, the chart is drawn without labels rather than failing.
 */
public final class LinePlot {
    public record Series(String name, double[] x, double[] y) {}

    private static final Color[] PALETTE = {
            new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c), new Color(0xd62728), new Color(0x9467bd),
            new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f), new Color(0xbcbd22), new Color(0x17becf)};

    private final String title, xLabel, yLabel;
    private final List<Series> series = new ArrayList<>();

    public LinePlot(String title, String xLabel, String yLabel) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    public LinePlot add(String name, double[] x, double[] y) {
        if (x.length != y.length) throw new IllegalArgumentException("series '" + name + "': " + x.length + " x values, " + y.length + " y values");
        series.add(new Series(name, x.clone(), y.clone()));
        return this;
    }

    /** Writes the chart as a PNG (to a temp file, then moved into place). */
    public void writePng(Path file, int width, int height) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        int left = 70, right = 20, top = 40, bottom = 50;
        int pw = width - left - right, ph = height - top - bottom;
        double x0 = Double.POSITIVE_INFINITY, x1 = Double.NEGATIVE_INFINITY, y0 = Double.POSITIVE_INFINITY, y1 = Double.NEGATIVE_INFINITY;
        for (Series s : series)
            for (int i = 0; i < s.x.length; i++) {
                if (!Double.isFinite(s.y[i])) continue;
                x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
                y0 = Math.min(y0, s.y[i]); y1 = Math.max(y1, s.y[i]);
            }
        if (!(x1 > x0)) { x0 = x0 - 1; x1 = x0 + 2; }
        if (!(y1 > y0)) { y0 = y0 - 1; y1 = y0 + 2; }
        if (!Double.isFinite(x0) || !Double.isFinite(y0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
        double pad = (y1 - y0) * 0.05;
        y0 -= pad;
        y1 += pad;
        g.setColor(new Color(0xdddddd));
        for (int t = 0; t <= 5; t++) {
            int yy = top + ph - (int) (ph * t / 5.0);
            g.drawLine(left, yy, left + pw, yy);
        }
        g.setColor(Color.BLACK);
        g.drawRect(left, top, pw, ph);
        g.setStroke(new BasicStroke(1.6f));
        for (int si = 0; si < series.size(); si++) {
            Series s = series.get(si);
            g.setColor(PALETTE[si % PALETTE.length]);
            g.setStroke(stroke(si));
            int px = -1, py = -1;
            for (int i = 0; i < s.x.length; i++) {
                if (!Double.isFinite(s.y[i])) { px = -1; continue; }
                int cx = left + (int) Math.round(pw * (s.x[i] - x0) / (x1 - x0));
                int cy = top + ph - (int) Math.round(ph * (s.y[i] - y0) / (y1 - y0));
                if (px >= 0) g.drawLine(px, py, cx, cy);
                if (s.x.length <= 40) g.fillOval(cx - 2, cy - 2, 5, 5);
                px = cx;
                py = cy;
            }
        }
        try {
            drawText(g, width, height, left, top, pw, ph, x0, x1, y0, y1);
        } catch (Throwable noFonts) {
            // a machine without fonts still gets the curves
        }
        g.dispose();
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), ".plot", ".png.tmp");
        try {
            if (!ImageIO.write(img, "png", tmp.toFile())) throw new IOException("no PNG writer available");
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Solid lines for the first palette round, then dashed, then dotted: more series than colours stay apart. */
    private static BasicStroke stroke(int series) {
        int round = series / PALETTE.length;
        if (round == 0) return new BasicStroke(1.6f);
        float[] dash = round == 1 ? new float[] {7f, 4f} : new float[] {2f, 3f};
        return new BasicStroke(1.6f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, dash, 0f);
    }

    private void drawText(Graphics2D g, int width, int height, int left, int top, int pw, int ph,
                          double x0, double x1, double y0, double y1) {
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(title, left, 24);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        for (int t = 0; t <= 5; t++) {
            double yv = y0 + (y1 - y0) * t / 5.0;
            int yy = top + ph - (int) (ph * t / 5.0);
            g.drawString(fmt(yv), 8, yy + 4);
            double xv = x0 + (x1 - x0) * t / 5.0;
            int xx = left + (int) (pw * t / 5.0);
            g.drawString(fmt(xv), xx - 10, top + ph + 16);
        }
        g.drawString(xLabel, left + pw / 2 - 20, height - 12);
        g.drawString(yLabel, 8, top - 8);
        int ly = top + 16;
        for (int si = 0; si < series.size(); si++) {
            g.setColor(PALETTE[si % PALETTE.length]);
            g.setStroke(stroke(si));
            g.drawLine(left + pw - 156, ly - 4, left + pw - 138, ly - 4);
            g.setColor(Color.BLACK);
            g.drawString(series.get(si).name, left + pw - 132, ly);
            ly += 15;
        }
    }

    private static String fmt(double v) {
        double a = Math.abs(v);
        if (a >= 1000) return String.format(Locale.ROOT, "%.0f", v);
        if (a >= 10) return String.format(Locale.ROOT, "%.1f", v);
        return String.format(Locale.ROOT, "%.3f", v);
    }
}
