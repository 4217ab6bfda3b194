package io.inf2.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

class ChartTest {

    private static Chart twoSeries() {
        return Chart.bars("Traffic").subtitle("EMULATED devices").yAxis("MB/s")
                .categories("memory", "csd")
                .series("link", 100, 10)
                .series("device", 0, 400)
                .limit("disk", 600)
                .build();
    }

    @Test
    void barsAreAsTallAsTheirValuesAndTheLimitIsDrawnAtItsValue() {
        Chart chart = twoSeries();
        BufferedImage img = chart.image();
        int bottom = chart.yPixel(0);
        // The link bar of "memory" (100) reaches its value's row, not above it.
        int x = chart.barCentre(0, 0);
        Color linkColour = new Color(img.getRGB(x, bottom - 2));
        assertEquals(linkColour, new Color(img.getRGB(x, chart.yPixel(100) + 2)));
        assertNotEquals(linkColour, new Color(img.getRGB(x, chart.yPixel(100) - 12)));
        // The device bar of "csd" (400) is four times as tall as that link bar, within a pixel.
        int deviceTop = chart.yPixel(400);
        assertEquals(4.0 * (bottom - chart.yPixel(100)), bottom - deviceTop, 2.0);
        assertNotEquals(linkColour, new Color(img.getRGB(chart.barCentre(1, 1), deviceTop + 2)), "series differ in colour");
        // The limit line crosses the plot between the bars.
        int between = (chart.barCentre(0, 1) + chart.barCentre(1, 0)) / 2;
        boolean limitDrawn = false;
        for (int dx = -12; dx <= 12; dx++) {
            limitDrawn |= new Color(img.getRGB(between + dx, chart.yPixel(600))).equals(Chart.LIMIT_COLOR);
        }
        assertTrue(limitDrawn, "limit line at its value");
    }

    @Test
    void aLoneBarStaysNarrow() {
        Chart one = Chart.bars("one").categories("driver").series("tokens/s", 50).build();
        BufferedImage img = one.image();
        int x = one.barCentre(0, 0);
        int y = one.yPixel(25);
        Color bar = new Color(img.getRGB(x, y));
        assertEquals(bar, new Color(img.getRGB(x + 40, y)));
        assertEquals(Color.WHITE, new Color(img.getRGB(x + 60, y)));
    }

    @Test
    void pngDecodesToTheImage() throws Exception {
        Chart chart = twoSeries();
        BufferedImage decoded = ImageIO.read(new ByteArrayInputStream(chart.png()));
        assertEquals(760, decoded.getWidth());
        assertEquals(420, decoded.getHeight());
    }

    @Test
    void textFormCarriesEveryNumber() {
        assertEquals("""
                Traffic (EMULATED devices) [MB/s]
                       | link | device
                -------+------+-------
                memory | 100  | 0
                csd    | 10   | 400
                limit: disk = 600
                """, twoSeries().toString());
    }

    @Test
    void histogramOfWholeNumbersUsesWholeBins() {
        Chart h = Chart.histogram("Prompt lengths", "tokens", List.of(1, 2, 2, 3, 10), 5);
        List<Double> counts = h.series().get(0).values();
        assertEquals(5.0, counts.stream().mapToDouble(Double::doubleValue).sum());
        assertEquals(List.of(3.0, 1.0, 0.0, 0.0, 1.0), counts);
        assertTrue(h.toString().contains("1–2 "), h.toString());
    }

    @Test
    void badChartsAreRefusedWithTheReason() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Chart.bars("t").categories("a", "b").series("s", 1).build());
        assertEquals("chart \"t\": series \"s\" has 1 values for 2 categories", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Chart.bars("t").categories("a").series("s", -1).build());
        assertEquals("chart \"t\": series \"s\" has the value -1.0; bars are finite and not negative", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Chart.histogram("h", "x", List.of(), 3));
    }

    @Test
    void numbersAreCompact() {
        assertEquals("0", Chart.compact(0));
        assertEquals("1.23k", Chart.compact(1234));
        assertEquals("612M", Chart.compact(612e6));
        assertEquals("1.5", Chart.compact(1.5));
        assertEquals("12.5", Chart.compact(12.5));
        assertEquals("0.0012", Chart.compact(0.00123));
        assertEquals(250.0, Chart.niceCeiling(201));
    }
}
