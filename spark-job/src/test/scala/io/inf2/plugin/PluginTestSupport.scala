package io.inf2.plugin

import java.lang.management.ManagementFactory
import java.nio.file.{Files, Path, Paths}

import scala.jdk.CollectionConverters._

import org.apache.spark.{SparkConf, SparkContext}

/** Spark contexts with the INF2 plugin for the plugin suites; every directory under the test's java.io.tmpdir. */
object PluginTestSupport {

  def freshDirectory(prefix: String): Path = {
    val root = Files.createDirectories(Paths.get(System.getProperty("java.io.tmpdir")).toAbsolutePath)
    Files.createTempDirectory(root, prefix)
  }

  /** The plugin on, the UI off, INF2's and Spark's scratch space under {@code work}. */
  def pluginConf(master: String, work: Path): SparkConf =
    new SparkConf()
      .setMaster(master)
      .setAppName("inf2-plugin-test")
      .set("spark.plugins", classOf[Inf2SparkPlugin].getName)
      .set("spark.ui.enabled", "false")
      .set("spark.local.dir", work.resolve("spark-local").toString)
      .set("spark.inf2.workDir", work.resolve("inf2-work").toString)
      .set("spark.inf2.modelCacheDir", work.resolve("model-cache").toString)

  def withContext[T](conf: SparkConf)(body: SparkContext => T): T = {
    val sc = new SparkContext(conf)
    try body(sc)
    finally sc.stop()
  }

  /** Every message along the cause chain, outermost first. */
  def messages(t: Throwable): List[String] =
    Iterator.iterate(t)(_.getCause).takeWhile(_ != null).map(e => String.valueOf(e.getMessage)).toList

  /** This JVM's module and system-property flags, for executors Spark forks (they do not inherit them). */
  def jvmFlagsForExecutors: String =
    ManagementFactory.getRuntimeMXBean.getInputArguments.asScala
      .filter(a => a.startsWith("--") || a.startsWith("-Djava.io.tmpdir="))
      .mkString(" ")
}
