package io.inf2.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.config.ConfigException;
import java.util.List;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Spark from kernel cells, as notebooks use it: a session with the INF2 plugin started in a cell,
 * Datasets rendered as tables, lambdas declared in cells running in Spark tasks, and the one-line
 * errors of bad usage (a wrong column, an engine setting per call, a missing model, a session without
 * the plugin).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KernelSparkTest {
    private static Inf2Kernel kernel;

    @BeforeAll
    static void startKernelAndSession() {
        kernel = Inf2Kernel.create(System.getProperty("java.class.path"));
        kernel.evalRaw("""
                import io.inf2.spark.Inf2;
                import org.apache.spark.sql.*;
                import org.apache.spark.api.java.function.MapFunction;
                SparkSession spark = Inf2.session(Map.of("spark.master", "local[1]", "spark.ui.enabled", "false",
                        "spark.sql.shuffle.partitions", "1", "spark.ui.showConsoleProgress", "false"));
                Dataset<Row> prompts = spark.sql("SELECT 'a' AS id, 'hello' AS prompt, array(1, 2) AS ids, CAST(NULL AS STRING) AS note "
                        + "UNION ALL SELECT 'b', 'world', array(3), 'x'");
                """);
    }

    @AfterAll
    static void stopKernel() {
        kernel.close();
    }

    /** The error as the kernel shows it, without the terminal colours of the first line. */
    private static List<String> shown(RuntimeException e) {
        return kernel.formatError(e).stream().map(l -> l.replaceAll("\u001b\\[[0-9;]*m", "")).toList();
    }

    @Test
    @Order(1)
    void aDatasetIsShownAsATableOfItsFirstRows() {
        Object value = kernel.evalRaw("prompts");
        DisplayData shown = kernel.getRenderer().render(value);
        String html = (String) shown.getData(MIMEType.TEXT_HTML);
        assertTrue(html.contains("<td style=\"text-align:left;white-space:pre-wrap\">[1, 2]</td>"), html);
        assertTrue(html.contains("<small>2 rows</small>"), html);
        assertEquals("""
                id | prompt | ids    | note
                ---+--------+--------+-----
                a  | hello  | [1, 2] | null
                b  | world  | [3]    | x
                (2 rows)
                """, shown.getData(MIMEType.TEXT_PLAIN));
    }

    @Test
    @Order(2)
    void lambdasDeclaredInCellsRunInSparkTasks() {
        assertEquals(List.of("HELLO", "WORLD"), kernel.evalRaw(
                "prompts.map((MapFunction<Row, String>) r -> r.getString(1).toUpperCase(), Encoders.STRING()).collectAsList()"));
    }

    @Test
    @Order(3)
    void aColumnThatDoesNotExistIsOneLine() {
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> kernel.evalRaw("Inf2.generate(prompts, Map.of(\"promptColumn\", \"text\"))"));
        assertInstanceOf(ConfigException.class, e);
        assertEquals(List.of("ConfigException: promptColumn \"text\": no such column in the input (columns: id, prompt, ids, note)"),
                shown(e));
    }

    @Test
    @Order(4)
    void anEngineSettingPerCallIsOneLine() {
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> kernel.evalRaw("Inf2.generate(prompts, Map.of(\"kvCache\", \"csd\"))"));
        assertEquals(List.of("ConfigException: kvCache=\"csd\": spark.inf2.kvCache is fixed when the session starts "
                + "(it is \"memory\"); give it to Inf2.session instead"), shown(e));
    }

    @Test
    @Order(5)
    void aMissingModelIsOneLineWhenTheSessionStarts() {
        kernel.evalRaw("spark.stop();");
        RuntimeException e = assertThrows(RuntimeException.class, () -> kernel.evalRaw("""
                Inf2.session(Map.of("spark.master", "local[1]", "spark.ui.enabled", "false",
                        "spark.inf2.model", "/nonexistent/inf2-model"))
                """));
        assertEquals(List.of("ConfigException: spark.inf2.model=\"file:/nonexistent/inf2-model\": no such directory"), shown(e));
    }

    @Test
    @Order(6)
    void aSessionWithoutThePluginIsOneLine() {
        kernel.evalRaw("SparkSession plain = SparkSession.builder().master(\"local[1]\").config(\"spark.ui.enabled\", \"false\").getOrCreate();");
        try {
            RuntimeException e = assertThrows(RuntimeException.class,
                    () -> kernel.evalRaw("Inf2.generate(plain.sql(\"SELECT 'x' AS prompt\"), Map.of())"));
            assertEquals(List.of("ConfigException: this SparkSession was started without the INF2 plugin: spark.plugins must "
                    + "include io.inf2.plugin.Inf2SparkPlugin (start it with Inf2.session(...) or bin/inf2-submit)"), shown(e));
        } finally {
            kernel.evalRaw("plain.stop();");
        }
    }
}
