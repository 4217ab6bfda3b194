package io.inf2.architecture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The engine must run standalone on a GPU machine with only a JDK: no package of this module but
 * io.inf2.plugin (the Spark adapter) may import Spark, Scala or Hadoop.
 */
class EngineIndependenceTest {
    private static final Path SOURCES = Path.of("src/main/java/io/inf2");
    private static final Pattern FORBIDDEN = Pattern.compile("^import\\s+(static\\s+)?(org\\.apache\\.spark|scala\\.|org\\.apache\\.hadoop)",
            Pattern.MULTILINE);

    @Test
    void engineSourcesImportNoSparkScalaOrHadoop() throws IOException {
        assertTrue(Files.isDirectory(SOURCES), "run from the module directory: " + SOURCES.toAbsolutePath());
        List<String> offenders;
        try (Stream<Path> files = Files.walk(SOURCES)) {
            offenders = files.filter(p -> p.toString().endsWith(".java"))
                    .filter(p -> !SOURCES.relativize(p).startsWith("plugin"))
                    .filter(EngineIndependenceTest::importsForbidden)
                    .map(p -> SOURCES.relativize(p).toString())
                    .sorted()
                    .toList();
        }
        assertEquals(List.of(), offenders, "engine files importing Spark, Scala or Hadoop (only io.inf2.plugin may)");
    }

    @Test
    void theCheckRecognisesAnImport() {
        assertTrue(FORBIDDEN.matcher("package x;\nimport org.apache.spark.SparkConf;\n").find());
        assertTrue(FORBIDDEN.matcher("import scala.collection.Seq;").find());
    }

    private static boolean importsForbidden(Path file) {
        try {
            return FORBIDDEN.matcher(Files.readString(file)).find();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
