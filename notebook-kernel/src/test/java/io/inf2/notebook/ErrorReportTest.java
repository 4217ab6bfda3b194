package io.inf2.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.inf2.config.ConfigException;
import java.util.List;
import org.junit.jupiter.api.Test;

class ErrorReportTest {

    private static StackTraceElement frame(String cls, String method) {
        return new StackTraceElement(cls, method, cls + ".java", 7);
    }

    @Test
    void theTraceStopsAfterTheCellsLastFrame() {
        RuntimeException e = new IllegalStateException("broken\nsecond line");
        e.setStackTrace(new StackTraceElement[] {frame("io.inf2.X", "run"), frame("REPL.$JShell$3", "do_it$"),
                frame("java.lang.reflect.Method", "invoke"), frame("java.lang.Thread", "run")});
        assertEquals(List.of("IllegalStateException: broken …", "",
                "    at io.inf2.X.run(io.inf2.X.java:7)",
                "    at REPL.$JShell$3.do_it$(REPL.$JShell$3.java:7)",
                "    ... 2 frames of the kernel"), ErrorReport.lines(e));
    }

    @Test
    void aWrappedErrorNamesItsRootCauseAndBadInputNeedsNoTrace() {
        RuntimeException wrapped = new RuntimeException("Job aborted", new ConfigException("kvCache: one of memory, csd, storage"));
        assertEquals(List.of("RuntimeException: Job aborted", "root cause: ConfigException: kvCache: one of memory, csd, storage"),
                ErrorReport.lines(wrapped));
        assertEquals(List.of("ConfigException: bad"), ErrorReport.lines(new ConfigException("bad")));
    }

    @Test
    void framesFromOtherThreadsAreCappedAndCausesFollow() {
        RuntimeException cause = new RuntimeException("deep");
        StackTraceElement[] many = new StackTraceElement[ErrorReport.MAX_FRAMES + 5];
        for (int i = 0; i < many.length; i++) {
            many[i] = frame("org.apache.spark.Task" + i, "run");
        }
        cause.setStackTrace(many);
        RuntimeException top = new RuntimeException("outer", cause);
        top.setStackTrace(new StackTraceElement[] {frame("REPL.$JShell$9", "do_it$")});
        List<String> lines = ErrorReport.lines(top);
        assertEquals("root cause: RuntimeException: deep", lines.get(1));
        int causedBy = lines.indexOf("Caused by: java.lang.RuntimeException: deep");
        assertEquals("    ... 5 more", lines.get(causedBy + ErrorReport.MAX_FRAMES + 1));
        assertEquals(causedBy + ErrorReport.MAX_FRAMES + 2, lines.size());
    }

    @Test
    void compilationErrorsShowTheirDetails() {
        CompilationException c = new CompilationException("line 1: x", List.of("line 1: x", "    y = 1;", "    ^"));
        assertEquals(c.details(), ErrorReport.lines(c));
    }
}
