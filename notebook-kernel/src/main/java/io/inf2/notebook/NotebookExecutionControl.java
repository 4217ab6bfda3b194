package io.inf2.notebook;

import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Map;
import jdk.jshell.execution.LocalExecutionControl;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;
import jdk.jshell.spi.SPIResolutionException;

/**
 * Runs cells inside the kernel's own JVM (JShell's local execution), where the engine, Spark and the
 * renderers live, and hands the kernel the live objects JShell would only describe as text: the
 * value of a cell's last expression and the exception a cell threw.
 *
 * <p>Used from the kernel's execution thread only (one cell at a time); {@link #stop} may come from
 * another thread.
 */
final class NotebookExecutionControl extends LocalExecutionControl {
    private Object capturedValue;
    private Throwable capturedException;

    NotebookExecutionControl(ClassLoader parent) {
        super(parent);
    }

    /** A provider that hands JShell this instance. */
    ExecutionControlProvider provider() {
        return new ExecutionControlProvider() {
            @Override
            public String name() {
                return "inf2-notebook";
            }

            @Override
            public ExecutionControl generate(ExecutionEnv env, Map<String, String> parameters) {
                return NotebookExecutionControl.this;
            }
        };
    }

    /**
     * Runs a snippet with two things a notebook needs that plain JShell does not give: the cells' class
     * loader as the context class loader (inherited by the thread that runs the snippet, and by the
     * local Spark executor a cell starts), so classes and lambdas declared in cells resolve inside
     * Spark tasks; and Scala's Console bound to the current System.out and System.err, which the
     * kernel has pointed at the cell's output, so {@code Dataset.show()} and {@code printSchema()}
     * print into the notebook instead of the kernel's log.
     */
    @Override
    protected String invoke(Method doit) throws Exception {
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        thread.setContextClassLoader(doit.getDeclaringClass().getClassLoader());
        try {
            PrintStream out = System.out;
            PrintStream err = System.err;
            Exception[] failure = new Exception[1];
            String text = scala.Console.withOut(out, () -> scala.Console.withErr(err, () -> {
                try {
                    return NotebookExecutionControl.super.invoke(doit);
                } catch (Exception e) {
                    failure[0] = e;
                    return null;
                }
            }));
            if (failure[0] != null) {
                throw failure[0];
            }
            return text;
        } finally {
            thread.setContextClassLoader(previous);
        }
    }

    /** Keeps the variable's object for {@link #takeValue} and answers JShell with its text as usual. */
    @Override
    public String varValue(String className, String varName) throws RunException, EngineTerminationException, InternalException {
        try {
            Field field = findClass(className).getDeclaredField(varName);
            field.setAccessible(true);
            capturedValue = field.get(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new InternalException("cannot read variable " + varName + " of " + className + ": " + e);
        }
        return super.varValue(className, varName);
    }

    /** Keeps the exception a snippet threw for {@link #takeException} before JShell turns it into text. */
    @Override
    protected String throwConvertedInvocationException(Throwable cause) throws RunException, InternalException {
        if (!(cause instanceof SPIResolutionException)) {
            capturedException = cause;
        }
        return super.throwConvertedInvocationException(cause);
    }

    /** The object of the variable JShell last asked for, once. */
    Object takeValue() {
        Object v = capturedValue;
        capturedValue = null;
        return v;
    }

    /** The exception the last snippet threw, once; null when it threw none. */
    Throwable takeException() {
        Throwable t = capturedException;
        capturedException = null;
        return t;
    }
}
