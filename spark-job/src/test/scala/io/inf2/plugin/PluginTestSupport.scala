package io.inf2.plugin

import java.lang.management.ManagementFactory
import java.nio.file.{Files, Path, Paths}

import scala.jdk.CollectionConverters._

import io.inf2.engine.{GenerationRequest, GenerationResult, SamplingParams}
import io.inf2.model.presets.{ModelInitializer, ModelPreset}
import io.inf2.tensor.DType
import org.apache.spark.{SparkConf, SparkContext, TaskContext}

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

  /** The tiny-opt preset (random weights, a real tokenizer) as a Hugging Face model directory. */
  def writeTinyModel(dir: Path): Path = ModelInitializer.write(ModelPreset.named("tiny-opt"), 1L, DType.F32, dir).directory()

  def request(i: Int): GenerationRequest = GenerationRequest.ofText(s"r$i", s"Prompt number $i is", SamplingParams.greedy(4))

  /** What a task saw of one generated row. */
  case class Generated(id: String, error: String, completion: List[Int], servedBy: List[String], executorId: String)

  /** Generates for prompts 0 until {@code rows} on the executors' shared engines, {@code partitions} tasks. */
  def generateOnExecutors(sc: SparkContext, rows: Int, partitions: Int): Seq[Generated] =
    sc.parallelize(0 until rows, partitions).mapPartitions { rowsOfTask =>
      val runtime = Inf2ExecutorRuntime.get()
      val lease = runtime.acquire()
      try {
        val results = lease.engine().generate(rowsOfTask.map(request).toList.asJava,
          lease.progressListener(s"partition ${TaskContext.getPartitionId()}"))
        results.asScala.map(r => generated(r, runtime.executorId)).toList.iterator
      } finally lease.close()
    }.collect().toSeq

  def generated(r: GenerationResult, executorId: String): Generated =
    Generated(r.id, r.error, r.completionTokens.toList, r.servedBy.asScala.toList, executorId)

  /** Every message along the cause chain, outermost first. */
  def messages(t: Throwable): List[String] =
    Iterator.iterate(t)(_.getCause).takeWhile(_ != null).map(e => String.valueOf(e.getMessage)).toList

  /** This JVM's module and system-property flags, for executors Spark forks (they do not inherit them). */
  def jvmFlagsForExecutors: String =
    ManagementFactory.getRuntimeMXBean.getInputArguments.asScala
      .filter(a => a.startsWith("--") || a.startsWith("-Djava.io.tmpdir="))
      .mkString(" ")
}
