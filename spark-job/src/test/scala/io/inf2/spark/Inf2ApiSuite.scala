package io.inf2.spark

import java.nio.file.Path

import scala.jdk.CollectionConverters._

import io.inf2.config.ConfigException
import io.inf2.spark.chat.TemplateException
import org.apache.spark.sql.{Row, SparkSession}
import org.apache.spark.sql.types.{DataTypes, StructField, StructType}
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import JobTestSupport._

/** The notebook API: Inf2.session and Inf2.generate on Datasets that do not come from files. */
class Inf2ApiSuite extends AnyFunSuite with BeforeAndAfterAll {

  private lazy val work: Path = freshDirectory("api-suite-")
  private var spark: SparkSession = _

  private def session(): SparkSession = {
    if (spark == null) spark = startSession(sessionConf(tinyOpt, work))
    spark
  }

  override def afterAll(): Unit = if (spark != null) spark.stop()

  test("a session without the INF2 plugin gets a one-line error naming spark.plugins") {
    val plain = SparkSession.builder().master("local[1]").appName("plain").config("spark.ui.enabled", "false").getOrCreate()
    try {
      val prompts = plain.createDataFrame(Seq(Row("hello")).asJava, StructType(Seq(StructField("prompt", DataTypes.StringType))))
      val e = intercept[ConfigException](Inf2.generate(prompts, Map.empty[String, String].asJava))
      assert(e.getMessage === "this SparkSession was started without the INF2 plugin: spark.plugins must include "
        + "io.inf2.plugin.Inf2SparkPlugin (start it with Inf2.session(...) or bin/inf2-submit)")
    } finally plain.stop()
  }

  test("a wrong model path stops the session from starting, with the key named") {
    val missing = work.resolve("no-such-model")
    val e = intercept[Exception](startSession(sessionConf(missing, work)))
    val message = messages(e).find(_.contains("spark.inf2.model")).getOrElse(fail(messages(e).mkString(" | ")))
    assert(message === s"spark.inf2.model=\"file:$missing\": no such directory")
    assert(SparkSession.getActiveSession.isEmpty && SparkSession.getDefaultSession.isEmpty)
  }

  test("generate numbers rows of an in-memory Dataset, keeps columns and takes per-row parameters") {
    val s = session()
    val texts = Seq("Alpha beta gamma", "One two three", "The rain in Spain", "Green ideas sleep")
    val schema = StructType(Seq(StructField("text", DataTypes.StringType), StructField("max_new_tokens", DataTypes.IntegerType),
      StructField("source", DataTypes.StringType)))
    val input = s.createDataFrame(texts.zipWithIndex.map { case (t, i) => Row(t, if (i == 0) 1 else null, s"src$i") }.asJava, schema)
    val results = Inf2.generate(input, Map("promptColumn" -> "text", "keepColumns" -> "source", "spark.inf2.maxNewTokens" -> "3").asJava)
    assert(results.columns.toSeq.last === "source")
    val rows = results.collect().map(asMap).map(r => r("id").asInstanceOf[String] -> r).toMap
    assert(rows.keySet === Set("0", "1", "2", "3"))
    val reference = standalone(tinyOpt, texts, maxNewTokens = 3)
    texts.indices.foreach { i =>
      val row = rows(i.toString)
      assert(row("prompt") === texts(i))
      assert(row("source") === s"src$i")
      val expected = if (i == 0) reference(0).completionTokens.take(1).toSeq else reference(i).completionTokens.toSeq
      assert(intList(row("completion_token_ids")) === expected, s"row $i")
    }
  }

  test("generate gives every row of a shuffled Dataset one id, and the same one each time the results are read") {
    val s = session()
    val texts = (0 until 9).map(i => s"Shuffled prompt $i")
    val schema = StructType(Seq(StructField("text", DataTypes.StringType)))
    // A repartition is a shuffle: the order of rows within its partitions is not fixed from one computation to the next.
    val input = s.createDataFrame(texts.map(Row(_)).asJava, schema).repartition(3)
    val results = Inf2.generate(input, Map("promptColumn" -> "text", "spark.inf2.maxNewTokens" -> "2").asJava)
    def idsByPrompt(): Map[String, String] = results.collect().map(asMap)
      .map(r => r("prompt").asInstanceOf[String] -> r("id").asInstanceOf[String]).toMap
    val first = idsByPrompt()
    assert(first.keySet === texts.toSet)
    assert(first.values.toSet === texts.indices.map(_.toString).toSet)
    assert(idsByPrompt() === first)
  }

  test("asking for a session with other INF2 settings while one runs is an error, not a silent no-op") {
    val s = session()
    assert(startSession(sessionConf(tinyOpt, work)) eq s, "the same settings give the running session")
    val e = intercept[ConfigException](startSession(sessionConf(tinyOpt, work, Map("spark.inf2.batchSize" -> "8"))))
    assert(e.getMessage === "a SparkSession is already running with spark.inf2.batchSize=\"4\" (asked for \"8\"); "
      + "INF2's settings are fixed for a session's life: stop it first (spark.stop())")
  }

  test("bad usage of generate gets the job's one-line errors") {
    val s = session()
    val input = s.createDataFrame(Seq(Row("x")).asJava, StructType(Seq(StructField("body", DataTypes.StringType))))
    def error(options: (String, String)*): String =
      intercept[ConfigException](Inf2.generate(input, options.toMap.asJava)).getMessage
    assert(error() === "promptColumn \"prompt\": no such column in the input (columns: body)")
    assert(error("promptColumn" -> "body", "output" -> "/tmp/x") ===
      "output is a setting of the batch job (Inf2.run, bin/inf2-submit); Inf2.generate takes the prompts as a Dataset and returns the results as one")
    assert(error("promptColumn" -> "body", "kvCache" -> "storage").startsWith(
      "kvCache=\"storage\": spark.inf2.kvCache is fixed when the session starts (it is \"memory\")"))
    assert(error("promptColumn" -> "body", "maxNewTokns" -> "3") === "unknown setting spark.inf2.maxNewTokns (did you mean maxNewTokens?)")
    val noTemplate = intercept[TemplateException](Inf2.generate(input, Map("messagesColumn" -> "body").asJava))
    assert(noTemplate.getMessage === s"$tinyOpt/tokenizer_config.json: the model has no chat_template, so it cannot render "
      + "chat messages (give plain prompts with promptColumn instead)")
  }
}
