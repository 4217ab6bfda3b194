package io.inf2.notebook;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import javax.imageio.ImageIO;
import org.dflib.jjava.jupyter.kernel.display.DisplayDataRenderable;
import org.dflib.jjava.jupyter.kernel.display.RenderContext;
import org.dflib.jjava.jupyter.kernel.display.common.Image;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;

/**
 * A bar chart drawn with java.awt (headless), shown in notebooks as a PNG and elsewhere as its
 * numbers. Categories along the x axis, one bar per series in each, the value printed on each bar;
 * optional horizontal limit lines (a bandwidth ceiling, a target) drawn dashed across the plot with
 * their label. The y axis starts at zero.
 *
 * <pre>{@code
 * Chart.bars("Decode throughput").subtitle("EMULATED devices").yAxis("tokens/s")
 *      .categories("memory", "csd").series("tokens/s", 812.0, 640.5).build()
 * }</pre>
 */
public final class Chart implements DisplayDataRenderable {
    private static final Color[] PALETTE = {new Color(0x4C72B0), new Color(0xDD8452), new Color(0x55A868),
            new Color(0x8172B3), new Color(0x937860), new Color(0xDA8BC3)};
    static final Color LIMIT_COLOR = new Color(0xC44E52);
    private static final Color AXIS = new Color(0x444444);
    private static final Color GRID = new Color(0xE5E5E5);
    /** Widest bar in pixels, so a chart with few bars does not fill the plot with one block. */
    private static final double MAX_BAR = 90;

    private final String title;
    private final String subtitle;
    private final String yLabel;
    private final List<String> categories;
    private final List<Series> series;
    private final List<Limit> limits;
    private final int width;
    private final int height;
    private final double yMax;

    /** One named row of values, one per category. */
    public record Series(String name, List<Double> values) {
        public Series {
            values = List.copyOf(values);
        }
    }

    /** A horizontal line across the plot at {@code value}. */
    public record Limit(String label, double value) {
    }

    private Chart(Builder b) {
        this.title = b.title;
        this.subtitle = b.subtitle;
        this.yLabel = b.yLabel;
        this.categories = List.copyOf(b.categories);
        this.series = List.copyOf(b.series);
        this.limits = List.copyOf(b.limits);
        this.width = b.width;
        this.height = b.height;
        double max = 0;
        for (Series s : series) {
            for (double v : s.values()) {
                max = Math.max(max, v);
            }
        }
        for (Limit l : limits) {
            max = Math.max(max, l.value());
        }
        this.yMax = niceCeiling(max * 1.08);
    }

    /** A bar chart to fill in. */
    public static Builder bars(String title) {
        return new Builder(title);
    }

    /**
     * A histogram of {@code values} in {@code bins} equal bins between their minimum and maximum
     * (whole-number bins when the values are whole numbers), one bar per bin with its count.
     */
    public static Chart histogram(String title, String xLabel, List<? extends Number> values, int bins) {
        if (values.isEmpty()) {
            throw new IllegalArgumentException("histogram \"" + title + "\": no values");
        }
        if (bins < 1) {
            throw new IllegalArgumentException("histogram \"" + title + "\": bins must be at least 1, got " + bins);
        }
        double[] v = values.stream().mapToDouble(Number::doubleValue).toArray();
        double min = Arrays.stream(v).min().orElseThrow();
        double max = Arrays.stream(v).max().orElseThrow();
        boolean whole = Arrays.stream(v).allMatch(x -> x == Math.rint(x));
        double span = max - min;
        double step = span == 0 ? 1 : span / bins;
        if (whole) {
            step = Math.max(1, Math.ceil((span + 1) / bins));
            bins = (int) Math.max(1, Math.ceil((span + 1) / step));
        }
        double[] counts = new double[bins];
        for (double x : v) {
            int bin = (int) Math.floor((x - min) / step);
            counts[Math.min(bins - 1, Math.max(0, bin))]++;
        }
        List<String> labels = new ArrayList<>(bins);
        for (int i = 0; i < bins; i++) {
            double lo = min + i * step;
            double hi = i == bins - 1 && !whole ? max : min + (i + 1) * step;
            labels.add(whole ? (step == 1 ? compact(lo) : compact(lo) + "–" + compact(hi - 1)) : compact(lo) + "–" + compact(hi));
        }
        Builder b = bars(title).subtitle(xLabel + ", " + v.length + " values").yAxis("count").categories(labels);
        return b.series("count", counts).build();
    }

    /** Fills in a chart; {@link #build} checks that every series has one value per category. */
    public static final class Builder {
        private final String title;
        private String subtitle = "";
        private String yLabel = "";
        private final List<String> categories = new ArrayList<>();
        private final List<Series> series = new ArrayList<>();
        private final List<Limit> limits = new ArrayList<>();
        private int width = 760;
        private int height = 420;

        private Builder(String title) {
            this.title = title;
        }

        /** A second line under the title (the conditions; "EMULATED devices"). */
        public Builder subtitle(String text) {
            this.subtitle = text;
            return this;
        }

        public Builder yAxis(String label) {
            this.yLabel = label;
            return this;
        }

        public Builder categories(String... names) {
            return categories(Arrays.asList(names));
        }

        public Builder categories(List<String> names) {
            categories.addAll(names);
            return this;
        }

        public Builder series(String name, double... values) {
            return series(name, Arrays.stream(values).boxed().toList());
        }

        public Builder series(String name, List<? extends Number> values) {
            series.add(new Series(name, values.stream().map(Number::doubleValue).toList()));
            return this;
        }

        /** A dashed line across the plot at {@code value}, labelled. */
        public Builder limit(String label, double value) {
            limits.add(new Limit(label, value));
            return this;
        }

        /** Image size in pixels (default 760 × 420). */
        public Builder size(int widthPixels, int heightPixels) {
            if (widthPixels < 200 || heightPixels < 150) {
                throw new IllegalArgumentException("chart \"" + title + "\": at least 200 × 150 pixels, got "
                        + widthPixels + " × " + heightPixels);
            }
            this.width = widthPixels;
            this.height = heightPixels;
            return this;
        }

        public Chart build() {
            if (categories.isEmpty() || series.isEmpty()) {
                throw new IllegalArgumentException("chart \"" + title + "\" needs categories and at least one series");
            }
            for (Series s : series) {
                if (s.values().size() != categories.size()) {
                    throw new IllegalArgumentException("chart \"" + title + "\": series \"" + s.name() + "\" has "
                            + s.values().size() + " values for " + categories.size() + " categories");
                }
                for (double v : s.values()) {
                    if (!Double.isFinite(v) || v < 0) {
                        throw new IllegalArgumentException("chart \"" + title + "\": series \"" + s.name()
                                + "\" has the value " + v + "; bars are finite and not negative");
                    }
                }
            }
            for (Limit l : limits) {
                if (!Double.isFinite(l.value()) || l.value() < 0) {
                    throw new IllegalArgumentException("chart \"" + title + "\": limit \"" + l.label() + "\" is " + l.value());
                }
            }
            return new Chart(this);
        }
    }

    public String title() {
        return title;
    }

    public List<Series> series() {
        return series;
    }

    public List<Limit> limits() {
        return limits;
    }

    // ---- geometry, shared by drawing and tests

    private int plotLeft() {
        return 78;
    }

    private int plotRight() {
        return width - 24;
    }

    private int plotTop() {
        return (subtitle.isEmpty() ? 48 : 64) + (series.size() > 1 ? 22 : 10);
    }

    private int plotBottom() {
        return height - 64;
    }

    /** The image row of {@code value} on the y axis. */
    int yPixel(double value) {
        return (int) Math.round(plotBottom() - (plotBottom() - plotTop()) * value / yMax);
    }

    /** Width of one bar: the category's width shared by its bars, with gaps, and no wider than {@link #MAX_BAR}. */
    private double barWidth() {
        double group = (plotRight() - plotLeft()) / (double) categories.size();
        return Math.min(MAX_BAR, group * 0.8 / series.size());
    }

    /** The image column at the middle of bar {@code seriesIndex} of category {@code categoryIndex}. */
    int barCentre(int categoryIndex, int seriesIndex) {
        double group = (plotRight() - plotLeft()) / (double) categories.size();
        double bar = barWidth();
        double first = plotLeft() + group * (categoryIndex + 0.5) - bar * series.size() / 2;
        return (int) Math.round(first + bar * (seriesIndex + 0.5));
    }

    // ---- drawing

    /** The chart as an image. */
    public BufferedImage image() {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            drawTitles(g);
            drawGridAndAxes(g);
            drawBars(g);
            drawLimits(g);
            drawCategoryLabels(g);
            drawLegend(g);
        } finally {
            g.dispose();
        }
        return img;
    }

    /** The chart as PNG bytes. */
    public byte[] png() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            if (!ImageIO.write(image(), "png", out)) {
                throw new IllegalStateException("no PNG writer in this JDK");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("chart \"" + title + "\": PNG encoding failed", e);
        }
        return out.toByteArray();
    }

    private void drawTitles(Graphics2D g) {
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, 16, 26);
        if (!subtitle.isEmpty()) {
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.setColor(new Color(0x555555));
            g.drawString(subtitle, 16, 45);
        }
    }

    private void drawGridAndAxes(Graphics2D g) {
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        FontMetrics fm = g.getFontMetrics();
        double step = niceStep(yMax / 5);
        for (double v = 0; v <= yMax + step * 1e-9; v += step) {
            int y = yPixel(v);
            g.setColor(GRID);
            g.drawLine(plotLeft(), y, plotRight(), y);
            g.setColor(AXIS);
            String label = compact(v);
            g.drawString(label, plotLeft() - 6 - fm.stringWidth(label), y + fm.getAscent() / 2 - 1);
        }
        g.setColor(AXIS);
        g.drawLine(plotLeft(), plotTop(), plotLeft(), plotBottom());
        g.drawLine(plotLeft(), plotBottom(), plotRight(), plotBottom());
        if (!yLabel.isEmpty()) {
            AffineTransform saved = g.getTransform();
            g.rotate(-Math.PI / 2);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            int textWidth = g.getFontMetrics().stringWidth(yLabel);
            g.drawString(yLabel, -(plotTop() + plotBottom()) / 2 - textWidth / 2, 18);
            g.setTransform(saved);
        }
    }

    private void drawBars(Graphics2D g) {
        double bar = barWidth();
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
        FontMetrics fm = g.getFontMetrics();
        for (int s = 0; s < series.size(); s++) {
            Color color = PALETTE[s % PALETTE.length];
            for (int c = 0; c < categories.size(); c++) {
                double v = series.get(s).values().get(c);
                int x0 = (int) Math.round(barCentre(c, s) - bar / 2);
                int x1 = (int) Math.round(barCentre(c, s) + bar / 2);
                int top = yPixel(v);
                g.setColor(color);
                g.fillRect(x0, top, Math.max(1, x1 - x0 - 1), plotBottom() - top);
                String label = compact(v);
                if (fm.stringWidth(label) <= bar + 8) {
                    g.setColor(AXIS);
                    g.drawString(label, barCentre(c, s) - fm.stringWidth(label) / 2, top - 3);
                }
            }
        }
    }

    private void drawLimits(Graphics2D g) {
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 11));
        FontMetrics fm = g.getFontMetrics();
        for (Limit l : limits) {
            int y = yPixel(l.value());
            g.setColor(LIMIT_COLOR);
            g.setStroke(new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {8f, 5f}, 0f));
            g.drawLine(plotLeft(), y, plotRight(), y);
            g.setStroke(new BasicStroke(1f));
            String text = l.label() + ": " + compact(l.value());
            g.drawString(text, plotRight() - fm.stringWidth(text) - 4, y - 5);
        }
    }

    private void drawCategoryLabels(Graphics2D g) {
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        FontMetrics fm = g.getFontMetrics();
        double group = (plotRight() - plotLeft()) / (double) categories.size();
        g.setColor(AXIS);
        for (int c = 0; c < categories.size(); c++) {
            int centre = (int) Math.round(plotLeft() + group * (c + 0.5));
            List<String> lines = wrap(categories.get(c), fm, (int) group - 4, 3);
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                g.drawString(line, centre - fm.stringWidth(line) / 2, plotBottom() + 16 + i * (fm.getHeight()));
            }
        }
    }

    private void drawLegend(Graphics2D g) {
        if (series.size() < 2) {
            return;
        }
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        FontMetrics fm = g.getFontMetrics();
        int x = plotRight();
        int y = plotTop() - 12;
        for (int s = series.size() - 1; s >= 0; s--) {
            String name = series.get(s).name();
            x -= fm.stringWidth(name) + 26;
            g.setColor(PALETTE[s % PALETTE.length]);
            g.fillRect(x, y - 9, 12, 10);
            g.setColor(AXIS);
            g.drawString(name, x + 16, y);
        }
    }

    /** Words of {@code text} in at most {@code maxLines} lines no wider than {@code width}; the last cut with "…". */
    private static List<String> wrap(String text, FontMetrics fm, int width, int maxLines) {
        List<String> lines = new ArrayList<>();
        StringBuilder line = new StringBuilder();
        for (String word : text.split(" ")) {
            String candidate = line.isEmpty() ? word : line + " " + word;
            if (fm.stringWidth(candidate) <= width || line.isEmpty()) {
                line.setLength(0);
                line.append(candidate);
            } else {
                lines.add(line.toString());
                line.setLength(0);
                line.append(word);
            }
        }
        lines.add(line.toString());
        List<String> kept = new ArrayList<>(lines.subList(0, Math.min(maxLines, lines.size())));
        if (lines.size() > maxLines) {
            kept.set(maxLines - 1, kept.get(maxLines - 1) + " …");
        }
        for (int i = 0; i < kept.size(); i++) {
            String l = kept.get(i);
            while (fm.stringWidth(l) > width && l.length() > 2) {
                l = l.substring(0, l.length() - 2) + "…";
            }
            kept.set(i, l);
        }
        return kept;
    }

    // ---- numbers

    /** A round number at or above {@code v}: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten. */
    static double niceCeiling(double v) {
        if (!(v > 0)) {
            return 1;
        }
        double power = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10}) {
            if (m * power >= v) {
                return m * power;
            }
        }
        return 10 * power;
    }

    private static double niceStep(double rough) {
        double power = Math.pow(10, Math.floor(Math.log10(rough)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * power >= rough) {
                return m * power;
            }
        }
        return 10 * power;
    }

    /** 3 significant digits with k, M, G, T suffixes: 1234 → "1.23k", 612e6 → "612M". */
    static String compact(double v) {
        double a = Math.abs(v);
        String[] suffixes = {"", "k", "M", "G", "T", "P"};
        int i = 0;
        while (a >= 999.5 && i < suffixes.length - 1) {
            a /= 1000;
            v /= 1000;
            i++;
        }
        String digits;
        if (a == 0) {
            digits = "0";
        } else if (a >= 99.95) {
            digits = String.format(Locale.ROOT, "%.0f", v);
        } else if (a >= 9.995) {
            digits = String.format(Locale.ROOT, "%.1f", v);
        } else if (a >= 0.01) {
            digits = String.format(Locale.ROOT, "%.2f", v);
        } else {
            digits = String.format(Locale.ROOT, "%.2g", v);
        }
        if (digits.contains(".") && !digits.contains("e")) {
            digits = digits.replaceAll("0+$", "").replaceAll("\\.$", "");
        }
        return digits + suffixes[i];
    }

    // ---- display

    @Override
    public Set<MIMEType> getSupportedRenderTypes() {
        return Set.of(MIMEType.IMAGE_PNG, MIMEType.TEXT_PLAIN);
    }

    @Override
    public Set<MIMEType> getPreferredRenderTypes() {
        return Set.of(MIMEType.IMAGE_PNG, MIMEType.TEXT_PLAIN);
    }

    @Override
    public void render(RenderContext context) {
        Image.renderImage(image(), context);
        context.renderIfRequested(MIMEType.TEXT_PLAIN, this::toString);
    }

    /** The title, subtitle, every value and the limits as text. */
    @Override
    public String toString() {
        StringBuilder t = new StringBuilder(title);
        if (!subtitle.isEmpty()) {
            t.append(" (").append(subtitle).append(')');
        }
        if (!yLabel.isEmpty()) {
            t.append(" [").append(yLabel).append(']');
        }
        t.append('\n');
        List<String> columns = new ArrayList<>();
        columns.add("");
        series.forEach(s -> columns.add(s.name()));
        List<List<String>> rows = new ArrayList<>();
        for (int c = 0; c < categories.size(); c++) {
            List<String> row = new ArrayList<>();
            row.add(categories.get(c));
            for (Series s : series) {
                row.add(compact(s.values().get(c)));
            }
            rows.add(row);
        }
        t.append(Table.of(columns, rows).text());
        for (Limit l : limits) {
            t.append("limit: ").append(l.label()).append(" = ").append(compact(l.value())).append('\n');
        }
        return t.toString();
    }
}
