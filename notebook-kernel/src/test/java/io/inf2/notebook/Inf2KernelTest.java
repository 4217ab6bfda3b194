package io.inf2.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The kernel's evaluation without Jupyter: cells through JShell in this JVM, values, errors, interrupts. */
class Inf2KernelTest {
    private static Inf2Kernel kernel;

    @BeforeAll
    static void startKernel() {
        kernel = Inf2Kernel.create(System.getProperty("java.class.path"));
    }

    @AfterAll
    static void stopKernel() {
        kernel.close();
    }

    @Test
    void theLastExpressionIsTheCellsValue() {
        assertEquals(3, kernel.evalRaw("1 + 2"));
        assertEquals(10, kernel.evalRaw("int five = 5;\nint ten = five * 2;\nten"));
        assertEquals("abc", kernel.evalRaw("String s = \"ab\";\ns + \"c\""));
    }

    @Test
    void aClosingSemicolonOrAStatementGivesNoValue() {
        assertNull(kernel.evalRaw("7 * 6;"));
        assertNull(kernel.evalRaw("int unused = 1;"));
        assertNull(kernel.evalRaw("for (int i = 0; i < 2; i++) { }"));
    }

    @Test
    void declarationsLiveOnInLaterCellsAndTheStartupImportsAreThere() {
        kernel.evalRaw("record Point(int x, int y) { int sum() { return x + y; } }");
        kernel.evalRaw("List<Point> points = new ArrayList<>(List.of(new Point(1, 2), new Point(3, 4)));");
        assertEquals(10, kernel.evalRaw("points.stream().mapToInt(Point::sum).sum()"));
        assertEquals(".out", kernel.evalRaw("DEFAULT_WORK"));
    }

    @Test
    void compileErrorsNameTheCellLineAndPointAtIt() {
        CompilationException e = assertThrows(CompilationException.class,
                () -> kernel.evalRaw("int a = 1;\nint b = a + undefinedName;"));
        assertTrue(e.getMessage().startsWith("line 2: cannot find symbol"), e.getMessage());
        List<String> details = e.details();
        assertTrue(details.contains("    symbol:   variable undefinedName"), details.toString());
        int sourceLine = details.indexOf("    int b = a + undefinedName;");
        assertTrue(sourceLine > 0, details.toString());
        assertEquals("    " + " ".repeat("int b = a + ".length()) + "^", details.get(sourceLine + 1));
    }

    @Test
    void anUnfinishedCellSaysSo() {
        CompilationException e = assertThrows(CompilationException.class,
                () -> kernel.evalRaw("int ok = 1;\nfor (int i = 0; i < 3; i++) {"));
        assertTrue(e.getMessage().startsWith("line 2: the cell ends inside an unfinished statement"), e.getMessage());
    }

    @Test
    void aMethodUsingSomethingUndefinedFailsWhenCalledWithTheMissingName() {
        kernel.evalRaw("void callsNothing() { notDefinedAnywhere(); }");
        CompilationException e = assertThrows(CompilationException.class, () -> kernel.evalRaw("callsNothing()"));
        assertTrue(e.getMessage().contains("notDefinedAnywhere"), e.getMessage());
    }

    @Test
    void exceptionsArriveAsTheObjectsTheCellThrew() {
        NumberFormatException e = assertThrows(NumberFormatException.class, () -> kernel.evalRaw("Integer.parseInt(\"zz\")"));
        assertEquals("For input string: \"zz\"", e.getMessage());
        CellFailure checked = assertThrows(CellFailure.class, () -> kernel.evalRaw("throw new IOException(\"disk gone\");"));
        assertInstanceOf(IOException.class, checked.getCause());
        List<String> lines = kernel.formatError(checked);
        assertTrue(lines.get(0).contains("IOException: disk gone"), lines.get(0));
        assertTrue(lines.get(lines.size() - 1).endsWith("frames of the kernel"), lines.toString());
    }

    @Test
    void badInputFromProjectCodeIsOneLine() {
        RuntimeException e = assertThrows(RuntimeException.class, () -> kernel.evalRaw(
                "io.inf2.config.Inf2Config.fromNames(Map.of(\"maxNewToken\", \"4\"), io.inf2.config.Settings.all(), \"spark.inf2.\")"));
        assertInstanceOf(ConfigException.class, e);
        List<String> lines = kernel.formatError(e);
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.get(0).contains("ConfigException: unknown setting spark.inf2.maxNewToken (did you mean maxNewTokens?)"),
                lines.get(0));
    }

    @Test
    void scalaConsoleOutputGoesWhereSystemOutPointsDuringTheCell() {
        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            kernel.evalRaw("scala.Console.println(\"from scala\");\nSystem.out.println(\"from java\");");
        } finally {
            System.setOut(original);
        }
        assertEquals("from scala\nfrom java\n", captured.toString(StandardCharsets.UTF_8));
    }

    @Test
    void cellsRunWithTheCellsClassLoaderAsContextLoader() {
        kernel.evalRaw("class Probe { }");
        assertEquals(true, kernel.evalRaw("Thread.currentThread().getContextClassLoader() == Probe.class.getClassLoader()"));
    }

    @Test
    void anInterruptStopsARunningCell() throws Exception {
        CompletableFuture<Object> running = CompletableFuture.supplyAsync(() -> kernel.evalRaw(
                "long spins = 0;\nwhile (true) { spins++; }"));
        Thread.sleep(1500);
        kernel.interrupt();
        Exception e = assertThrows(Exception.class, () -> running.get(30, TimeUnit.SECONDS));
        assertInstanceOf(CancellationException.class, e.getCause(), String.valueOf(e.getCause()));
        assertEquals(2, kernel.evalRaw("1 + 1"), "the kernel keeps working after an interrupt");
    }

    @Test
    void completionAndCompletenessFollowTheUnitUnderTheCursor() {
        String cell = "int first = 1;\nStri";
        var options = kernel.complete(cell, cell.length());
        assertTrue(options.getReplacements().contains("String"), options.getReplacements().toString());
        assertEquals(cell.length() - "Stri".length(), options.getSourceStart());
        String call = "int second = 2;\nString.valueOf(second)";
        var doc = kernel.inspect(call, call.indexOf("valueOf") + 3, false);
        assertTrue(String.valueOf(doc.getData(org.dflib.jjava.jupyter.kernel.display.mime.MIMEType.TEXT_PLAIN))
                .contains("String.valueOf(int"), "inspection shows the method under the cursor");
        assertEquals(Inf2Kernel.IS_COMPLETE_YES, kernel.isComplete("int q = 1;\nq + 1"));
        assertEquals("    ", kernel.isComplete("for (int i = 0; i < 3; i++) {"));
    }
}
