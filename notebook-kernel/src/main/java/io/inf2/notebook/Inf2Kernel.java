package io.inf2.notebook;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import jdk.jshell.DeclarationSnippet;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.ExpressionSnippet;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;
import jdk.jshell.VarSnippet;
import org.apache.spark.sql.SparkSession;
import org.dflib.jjava.jupyter.kernel.BaseKernel;
import org.dflib.jjava.jupyter.kernel.HelpLink;
import org.dflib.jjava.jupyter.kernel.JupyterIO;
import org.dflib.jjava.jupyter.kernel.LanguageInfo;
import org.dflib.jjava.jupyter.kernel.ReplacementOptions;
import org.dflib.jjava.jupyter.kernel.comm.CommManager;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.display.Renderer;
import org.dflib.jjava.jupyter.kernel.magic.MagicsRegistry;
import org.dflib.jjava.jupyter.kernel.util.StringStyler;
import org.dflib.jjava.jupyter.kernel.util.TextColor;

/**
 * The {@code inf2-java} Jupyter kernel: Java cells run by JShell inside this JVM, whose class path
 * holds the engine, the Spark job and Spark. A cell is any sequence of Java statements,
 * declarations and imports; when the last one is an expression, its value is the cell's result,
 * rendered by {@link Renderers} (Spark Datasets and Arrow tables as HTML tables, charts as images).
 *
 * <p>Cells start with JShell's default imports (java.io, java.math, java.net, java.nio.file,
 * java.util and its concurrent, function, prefs, regex and stream packages) and the static
 * helpers of {@link Notebook}.
 */
public final class Inf2Kernel extends BaseKernel implements AutoCloseable {
    /** The kernelspec name bin/inf2-jupyter-install writes and notebooks name in their metadata. */
    public static final String KERNEL_NAME = "inf2-java";

    private static final List<String> STARTUP_IMPORTS = List.of(
            "import java.io.*;", "import java.math.*;", "import java.net.*;", "import java.nio.file.*;",
            "import java.util.*;", "import java.util.concurrent.*;", "import java.util.function.*;",
            "import java.util.prefs.*;", "import java.util.regex.*;", "import java.util.stream.*;",
            "import static io.inf2.notebook.Notebook.*;");
    /** How often an interrupt is repeated to JShell until the cell ends ({@link #interrupt}). */
    private static final long STOP_REPEAT_MILLIS = 50;

    private final JShell shell;
    private final NotebookExecutionControl control;
    private volatile boolean interruptRequested;
    private volatile boolean cellRunning;

    private Inf2Kernel(Renderer renderer, NotebookExecutionControl control, JShell shell) {
        super(KERNEL_NAME, version(), new LanguageInfo("java", Integer.toString(Runtime.version().feature()),
                        "text/x-java-source", ".jshell", "java", "text/x-java", "script"),
                List.of(new HelpLink("Java " + Runtime.version().feature() + " API",
                        "https://docs.oracle.com/en/java/javase/" + Runtime.version().feature() + "/docs/api/")),
                null, new JupyterIO(StandardCharsets.UTF_8), new CommManager(), renderer, null, new MagicsRegistry(),
                false, new StringStyler.Builder().addPrimaryStyle(TextColor.BOLD_RESET_FG)
                        .addSecondaryStyle(TextColor.BOLD_RED_FG).addHighlightStyle(TextColor.BOLD_RESET_FG).build());
        this.control = control;
        this.shell = shell;
        Renderers.registerAll(renderer);
    }

    /**
     * A kernel whose cells compile against {@code classPath} (the JVM's own, normally) and run in
     * this JVM.
     */
    public static Inf2Kernel create(String classPath) {
        NotebookExecutionControl control = new NotebookExecutionControl(Inf2Kernel.class.getClassLoader());
        JShell shell = JShell.builder().executionEngine(control.provider(), null).build();
        try {
            shell.addToClasspath(classPath);
            for (String imp : STARTUP_IMPORTS) {
                for (SnippetEvent e : shell.eval(imp)) {
                    if (e.status() == Snippet.Status.REJECTED) {
                        throw new IllegalStateException("kernel start-up import failed: " + imp);
                    }
                }
            }
            return new Inf2Kernel(new Renderer(), control, shell);
        } catch (RuntimeException e) {
            shell.close();
            throw e;
        }
    }

    private static String version() {
        String v = Inf2Kernel.class.getPackage().getImplementationVersion();
        return v == null ? "development" : v;
    }

    // ---- evaluation

    /**
     * One unit of a cell: the source JShell takes (a ';' added where the cell left it out), where it
     * starts in the cell, and whether the cell ends it with ';' itself.
     */
    private record Unit(String source, int offset, boolean endsWithSemicolon) {
    }

    /**
     * Runs the cell's units in order and stops at the first that does not compile or throws. Returns
     * the value of the last unit when it is an expression (or a bare variable name) written without a
     * closing ';', else null: as in IPython, a ';' keeps a value (a printf's PrintStream) out of the
     * output.
     */
    @Override
    public Object evalRaw(String cell) {
        interruptRequested = false;
        cellRunning = true;
        try {
            List<Unit> units = split(cell);
            Object value = null;
            for (int i = 0; i < units.size(); i++) {
                value = run(units.get(i), cell, i == units.size() - 1);
                if (interruptRequested) {
                    throw new CancellationException("cell interrupted");
                }
            }
            return value;
        } finally {
            cellRunning = false;
        }
    }

    private List<Unit> split(String cell) {
        SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
        List<Unit> units = new ArrayList<>();
        String rest = cell;
        while (true) {
            SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(rest);
            int offset = cell.length() - rest.length();
            switch (info.completeness()) {
                case EMPTY:
                    return units;
                case DEFINITELY_INCOMPLETE:
                case CONSIDERED_INCOMPLETE: {
                    int line = lineOf(cell, offset + leadingBlank(rest));
                    String message = "line " + line + ": the cell ends inside an unfinished statement or declaration "
                            + "(a missing ';', ')' or '}'?)";
                    throw new CompilationException(message, List.of(message));
                }
                default:
                    String written = rest.substring(0, rest.length() - info.remaining().length()).strip();
                    units.add(new Unit(info.source(), offset, written.endsWith(";")));
                    if (info.remaining().length() >= rest.length()) {
                        return units;
                    }
                    rest = info.remaining();
            }
        }
    }

    private Object run(Unit unit, String cell, boolean last) {
        control.takeException();
        List<SnippetEvent> events = shell.eval(unit.source());
        SnippetEvent main = null;
        for (SnippetEvent e : events) {
            if (e.causeSnippet() != null) {
                continue;
            }
            main = e;
            checkCompiled(e, unit, cell);
            if (e.exception() != null) {
                throw failure(e);
            }
        }
        if (!last || unit.endsWithSemicolon() || main == null || !main.status().isActive()) {
            return null;
        }
        return valueOf(main.snippet());
    }

    private void checkCompiled(SnippetEvent e, Unit unit, String cell) {
        Snippet snippet = e.snippet();
        if (e.status() == Snippet.Status.REJECTED) {
            List<Diag> diagnostics = shell.diagnostics(snippet).filter(Diag::isError).toList();
            List<String> details = new ArrayList<>();
            String first = null;
            for (Diag d : diagnostics) {
                int at = unit.offset() + (int) Math.max(0, d.getPosition());
                String message = d.getMessage(Locale.ROOT);
                String headline = "line " + lineOf(cell, at) + ": " + message.lines().findFirst().orElse(message);
                if (first == null) {
                    first = headline;
                }
                details.add(headline);
                message.lines().skip(1).filter(l -> !l.isBlank() && !l.strip().equals("location: class"))
                        .forEach(l -> details.add("    " + l.strip()));
                details.addAll(pointAt(cell, at));
            }
            if (first == null) {
                first = "line " + lineOf(cell, unit.offset() + leadingBlank(unit.source())) + ": the code does not compile";
                details.add(first);
            } else if (diagnostics.size() > 1) {
                first += " (and " + (diagnostics.size() - 1) + " more)";
            }
            throw new CompilationException(first, details);
        }
        if (e.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED && snippet instanceof DeclarationSnippet d) {
            List<String> missing = shell.unresolvedDependencies(d).toList();
            String message = "line " + lineOf(cell, unit.offset() + leadingBlank(unit.source())) + ": " + d.name()
                    + " uses " + String.join(", ", missing) + ", which " + (missing.size() == 1 ? "is" : "are") + " not defined";
            throw new CompilationException(message, List.of(message));
        }
    }

    private RuntimeException failure(SnippetEvent e) {
        if (e.exception() instanceof UnresolvedReferenceException u) {
            List<String> missing = shell.unresolvedDependencies(u.getSnippet()).toList();
            String message = u.getSnippet().name() + " cannot run: it uses " + String.join(", ", missing)
                    + ", which " + (missing.size() == 1 ? "is" : "are") + " not defined";
            return new CompilationException(message, List.of(message));
        }
        Throwable thrown = control.takeException();
        if (thrown == null) {
            // Not from the cell's code (JShell's own failure): report what JShell says.
            thrown = e.exception();
        }
        if (interruptRequested) {
            return new CancellationException("cell interrupted");
        }
        if (thrown instanceof RuntimeException r && !(thrown instanceof EvalException)) {
            return r;
        }
        return new CellFailure(thrown);
    }

    private Object valueOf(Snippet snippet) {
        if (snippet instanceof VarSnippet v && v.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND) {
            shell.varValue(v);
            return control.takeValue();
        }
        if (snippet instanceof ExpressionSnippet x && x.subKind() == Snippet.SubKind.VAR_VALUE_SUBKIND) {
            VarSnippet v = shell.variables().filter(s -> s.name().equals(x.name())).findFirst().orElse(null);
            if (v != null) {
                shell.varValue(v);
                return control.takeValue();
            }
            // A name JShell did not declare (a static import, a field): reading it again has no side effects.
            for (SnippetEvent e : shell.eval("(" + x.name() + ")")) {
                if (e.causeSnippet() == null && e.exception() == null && e.snippet() instanceof VarSnippet temp
                        && temp.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND) {
                    shell.varValue(temp);
                    return control.takeValue();
                }
            }
        }
        return null;
    }

    private static int lineOf(String cell, int offset) {
        int line = 1;
        for (int i = 0; i < Math.min(offset, cell.length()); i++) {
            if (cell.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    private static int leadingBlank(String s) {
        int i = 0;
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        return i;
    }

    /** The cell's line holding {@code offset}, and a caret under the offset. */
    private static List<String> pointAt(String cell, int offset) {
        int at = Math.min(offset, cell.length());
        int start = cell.lastIndexOf('\n', at - 1) + 1;
        int end = cell.indexOf('\n', at);
        String line = cell.substring(start, end < 0 ? cell.length() : end);
        StringBuilder caret = new StringBuilder("    ");
        for (int i = start; i < at; i++) {
            caret.append(cell.charAt(i) == '\t' ? '\t' : ' ');
        }
        return List.of("    " + line, caret.append('^').toString());
    }

    // ---- errors, completion, inspection, interrupts

    @Override
    public List<String> formatError(Throwable e) {
        List<String> lines = new ArrayList<>(ErrorReport.lines(e));
        if (!lines.isEmpty()) {
            lines.set(0, errorStyler.secondary(lines.get(0)));
        }
        return lines;
    }

    @Override
    public ReplacementOptions complete(String cell, int at) {
        Unit unit = unitAt(cell, at);
        if (unit == null) {
            return null;
        }
        int[] anchor = new int[1];
        List<String> options = shell.sourceCodeAnalysis()
                .completionSuggestions(unit.source(), at - unit.offset(), anchor).stream()
                .filter(SourceCodeAnalysis.Suggestion::matchesType)
                .map(SourceCodeAnalysis.Suggestion::continuation)
                .distinct()
                .toList();
        if (options.isEmpty()) {
            options = shell.sourceCodeAnalysis().completionSuggestions(unit.source(), at - unit.offset(), anchor).stream()
                    .map(SourceCodeAnalysis.Suggestion::continuation).distinct().toList();
        }
        return new ReplacementOptions(options, unit.offset() + anchor[0], at);
    }

    @Override
    public DisplayData inspect(String cell, int at, boolean extraDetail) {
        Unit unit = unitAt(cell, at);
        if (unit == null) {
            return null;
        }
        // JShell documents the call the cursor is in; a cursor on a method's name means its call.
        String source = unit.source();
        int cursor = Math.min(at - unit.offset(), source.length());
        int nameEnd = cursor;
        while (nameEnd < source.length() && Character.isJavaIdentifierPart(source.charAt(nameEnd))) {
            nameEnd++;
        }
        if (nameEnd < source.length() && source.charAt(nameEnd) == '(') {
            cursor = nameEnd + 1;
        }
        List<SourceCodeAnalysis.Documentation> docs = shell.sourceCodeAnalysis().documentation(source, cursor, extraDetail);
        if (docs.isEmpty()) {
            return null;
        }
        StringBuilder text = new StringBuilder();
        for (SourceCodeAnalysis.Documentation d : docs) {
            text.append(d.signature()).append('\n');
            if (d.javadoc() != null && !d.javadoc().isBlank()) {
                text.append(d.javadoc().strip()).append("\n\n");
            }
        }
        return new DisplayData(text.toString().strip());
    }

    /** The unit of the cell holding {@code at}; a cell that does not split yields its whole text. */
    private Unit unitAt(String cell, int at) {
        SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
        String rest = cell;
        while (!rest.isEmpty()) {
            int offset = cell.length() - rest.length();
            SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(rest);
            if (!info.completeness().isComplete() || info.remaining().length() >= rest.length()) {
                return new Unit(rest, offset, false);
            }
            int end = cell.length() - info.remaining().length();
            if (at <= end) {
                return new Unit(cell.substring(offset, end), offset, false);
            }
            rest = info.remaining();
        }
        return null;
    }

    @Override
    public String isComplete(String cell) {
        String rest = cell;
        while (true) {
            SourceCodeAnalysis.CompletionInfo info = shell.sourceCodeAnalysis().analyzeCompletion(rest);
            switch (info.completeness()) {
                case EMPTY:
                    return IS_COMPLETE_YES;
                case DEFINITELY_INCOMPLETE:
                case CONSIDERED_INCOMPLETE:
                    return "    ";
                case UNKNOWN:
                    return IS_COMPLETE_BAD;
                default:
                    if (info.remaining().length() >= rest.length()) {
                        return IS_COMPLETE_YES;
                    }
                    rest = info.remaining();
            }
        }
    }

    /**
     * Stops the running cell: JShell stops the cell's own code at its next check, and Spark jobs the
     * cell waits for are cancelled, since JShell cannot reach into them.
     */
    @Override
    public void interrupt() {
        interruptRequested = true;
        if (SparkSession.getDefaultSession().isDefined()) {
            SparkSession.getDefaultSession().get().sparkContext().cancelAllJobs();
        }
        // JShell drops a stop that comes while a unit compiles or before its code has started, so the
        // stop is repeated until the cell ends (or the next cell clears the request).
        Thread.ofPlatform().daemon().name("inf2-kernel-interrupt").start(() -> {
            while (cellRunning && interruptRequested) {
                try {
                    shell.stop();
                    Thread.sleep(STOP_REPEAT_MILLIS);
                } catch (IllegalStateException | InterruptedException closedOrStopped) {
                    return;
                }
            }
        });
    }

    @Override
    public void onShutdown(boolean isRestarting) {
        close();
        super.onShutdown(isRestarting);
    }

    /** Stops the Spark session cells started, if any, and JShell. */
    @Override
    public void close() {
        if (SparkSession.getDefaultSession().isDefined()) {
            SparkSession.getDefaultSession().get().stop();
        }
        shell.close();
    }
}
