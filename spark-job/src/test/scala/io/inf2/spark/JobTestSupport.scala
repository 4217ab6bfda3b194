package io.inf2.spark

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path, Paths}

import scala.jdk.CollectionConverters._

import io.inf2.config.{Inf2Config, Settings}
import io.inf2.engine.{EngineOptions, GenerationRequest, GenerationResult, InferenceEngine, ProgressListener, SamplingParams}
import io.inf2.model.presets.{ModelInitializer, ModelPreset}
import io.inf2.tensor.DType
import org.apache.spark.scheduler.{SparkListener, SparkListenerTaskEnd}
import org.apache.spark.sql.{Row, SparkSession}
import org.apache.spark.Success

/** Models, sessions, input files and reference results for the job's suites; files under the test's java.io.tmpdir. */
object JobTestSupport {

  /** Tokens generated per row in the suites: enough to compare, few enough to stay fast. */
  val MaxNewTokens = 4

  def freshDirectory(prefix: String): Path = {
    val root = Files.createDirectories(Paths.get(System.getProperty("java.io.tmpdir")).toAbsolutePath)
    Files.createTempDirectory(root, prefix)
  }

  /** The tiny-opt preset (random weights, GPT-2 tokenizer, 512 positions), written once per JVM. */
  lazy val tinyOpt: Path = writeModel("tiny-opt")

  /** The tiny LLaMA-3 preset, whose tokenizer_config.json has LLaMA-3's chat template. */
  lazy val tinyLlama3: Path = writeModel("tiny-llama3")

  private def writeModel(preset: String): Path =
    ModelInitializer.write(ModelPreset.named(preset), 7L, DType.F32, freshDirectory("model-").resolve(preset)).directory()

  /**
   * Spark configuration of the suites: local[2] with up to 4 attempts per task (Spark's local mode
   * retries nothing unless told), the plugin, the KV cache in memory, scratch space under `work`.
   */
  def sessionConf(model: Path, work: Path, extra: Map[String, String] = Map.empty): Map[String, String] = Map(
    "spark.master" -> "local[2,4]",
    "spark.app.name" -> "inf2-job-test",
    "spark.ui.enabled" -> "false",
    "spark.ui.showConsoleProgress" -> "false",
    "spark.sql.shuffle.partitions" -> "4",
    "spark.local.dir" -> work.resolve("spark-local").toString,
    "spark.sql.warehouse.dir" -> work.resolve("warehouse").toString,
    "spark.inf2.model" -> model.toString,
    "spark.inf2.kvCache" -> "memory",
    "spark.inf2.batchSize" -> "4",
    "spark.inf2.maxNewTokens" -> MaxNewTokens.toString,
    "spark.inf2.workDir" -> work.resolve("inf2-work").toString,
    "spark.inf2.modelCacheDir" -> work.resolve("model-cache").toString) ++ extra

  def startSession(conf: Map[String, String]): SparkSession = Inf2.session(conf.asJava)

  /** Completions of the standalone engine (no Spark) for the same model and generation settings. */
  def standalone(model: Path, prompts: Seq[String], maxNewTokens: Int = MaxNewTokens): Seq[GenerationResult] = {
    val config = Inf2Config.fromNames(Map(Settings.MODEL.name -> model.toString, Settings.KV_CACHE.name -> "memory",
      Settings.BATCH_SIZE.name -> "3", Settings.BACKEND.name -> "cpu").asJava, Settings.all(), "")
    val engine = InferenceEngine.open(EngineOptions.from(config))
    try {
      val requests = prompts.zipWithIndex.map { case (p, i) => GenerationRequest.ofText(s"r$i", p, SamplingParams.greedy(maxNewTokens)) }
      engine.generate(requests.asJava, ProgressListener.NONE).asScala.toSeq
    } finally engine.close()
  }

  def writeLines(file: Path, lines: Seq[String]): Path = {
    Files.createDirectories(file.getParent)
    Files.write(file, lines.mkString("", "\n", "\n").getBytes(StandardCharsets.UTF_8))
  }

  /** Every output row of a job by id, as column name to value. */
  def readOutput(spark: SparkSession, output: Path): Map[String, Map[String, Any]] = {
    val rows = spark.read.parquet(output.toString).collect().toSeq
    val ids = rows.map(_.getAs[String]("id"))
    assert(ids.distinct.size == ids.size, s"duplicate ids in $output: ${ids.diff(ids.distinct)}")
    rows.map(r => r.getAs[String]("id") -> asMap(r)).toMap
  }

  def asMap(r: Row): Map[String, Any] = r.schema.fieldNames.map(n => n -> r.getAs[Any](n)).toMap

  def intList(v: Any): Seq[Int] = v match {
    case null => null
    case s: scala.collection.Seq[_] => s.map(_.asInstanceOf[Int]).toSeq
  }

  /** Counts failed task attempts while it is registered. */
  final class FailedTasks extends SparkListener {
    @volatile var count = 0

    override def onTaskEnd(end: SparkListenerTaskEnd): Unit =
      if (end.reason != Success) count += 1
  }

  /** Every message along the cause chain, outermost first. */
  def messages(t: Throwable): List[String] =
    Iterator.iterate(t)(_.getCause).takeWhile(_ != null).map(e => String.valueOf(e.getMessage)).toList
}
