package io.inf2.plugin;

import io.inf2.config.ConfigException;
import io.inf2.config.Settings;
import io.inf2.modelcache.ModelCache;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import scala.Tuple2;

/**
 * Where the model is, as Hadoop sees it (any FileSystem URI), and where the engine reads it from: in
 * place when it is on the local file system, else from the host's model cache.
 */
final class ModelLocator {
    private static final System.Logger LOG = System.getLogger(ModelLocator.class.getName());
    private static final String LOCAL_SCHEME = "file";
    private static final String HADOOP_PREFIX = "spark.hadoop.";

    private ModelLocator() {
    }

    /**
     * The model URI with scheme and authority filled in, the way Spark resolves input paths: a bare
     * path is on the default file system (fs.defaultFS), relative to the working directory of the
     * driver. Executors get this form, so their own working directory does not matter.
     */
    static String qualify(String modelUri, Configuration hadoopConf) {
        try {
            Path path = new Path(modelUri);
            return path.getFileSystem(hadoopConf).makeQualified(path).toString();
        } catch (IOException | IllegalArgumentException e) {
            throw new ConfigException(Settings.MODEL.sparkKey() + "=\"" + modelUri + "\": " + oneLine(e));
        }
    }

    /** Fails with the key named unless the qualified URI is a directory with a config.json. */
    static void checkModelDirectory(String qualified, Configuration hadoopConf) {
        String where = Settings.MODEL.sparkKey() + "=\"" + qualified + "\"";
        try {
            Path path = new Path(qualified);
            FileSystem fs = path.getFileSystem(hadoopConf);
            FileStatus status = fs.getFileStatus(path);
            if (!status.isDirectory()) {
                throw new ConfigException(where + ": not a directory (give the model directory)");
            }
            if (!fs.exists(new Path(path, "config.json"))) {
                throw new ConfigException(where + ": no config.json in the directory (not a model directory)");
            }
        } catch (FileNotFoundException e) {
            throw new ConfigException(where + ": no such directory");
        } catch (IOException e) {
            throw new ConfigException(where + ": cannot read it: " + oneLine(e));
        }
    }

    /**
     * A local directory holding the model: the directory itself for file: URIs, else the host's cached
     * copy (filled on first use).
     */
    static java.nio.file.Path localDirectory(String qualified, Configuration hadoopConf, ModelCache cache)
            throws IOException {
        Path path = new Path(qualified);
        if (LOCAL_SCHEME.equals(path.toUri().getScheme())) {
            return java.nio.file.Path.of(path.toUri());
        }
        long start = System.nanoTime();
        ModelCache.CachedModel cached = cache.materialize(new HadoopModelDirectory(path, hadoopConf));
        if (cached.filled()) {
            LOG.log(Level.INFO, "model {0}: copied {1} MiB to {2} in {3} s", qualified, cached.bytesCopied() >> 20,
                    cached.directory(), String.format("%.1f", (System.nanoTime() - start) / 1e9));
        }
        return cached.directory();
    }

    /** Hadoop configuration as Spark builds it for executors: the spark.hadoop.* keys over Hadoop's defaults. */
    static Configuration hadoopConfiguration(SparkConf conf) {
        Configuration hadoop = new Configuration();
        for (Tuple2<String, String> entry : conf.getAllWithPrefix(HADOOP_PREFIX)) {
            hadoop.set(entry._1(), entry._2());
        }
        return hadoop;
    }

    private static String oneLine(Exception e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.lines().findFirst().orElse(m);
    }
}
