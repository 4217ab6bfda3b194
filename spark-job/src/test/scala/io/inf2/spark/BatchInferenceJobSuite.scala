package io.inf2.spark

import java.nio.file.{Files, Path}

import scala.jdk.CollectionConverters._

import io.inf2.config.ConfigException
import io.inf2.output.ResultArrow
import org.apache.spark.sql.{Row, SparkSession}
import org.apache.spark.sql.types.{ArrayType, DataTypes, StructField, StructType}
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import JobTestSupport._

/** The batch job end to end in one local[2] session: input files → generation on the plugin's engine → Parquet. */
class BatchInferenceJobSuite extends AnyFunSuite with BeforeAndAfterAll {

  private var work: Path = _
  private var spark: SparkSession = _

  private val prompts = (0 until 12).map(i => s"Prompt number $i: the quick brown fox")

  override def beforeAll(): Unit = {
    work = freshDirectory("job-suite-")
    spark = startSession(sessionConf(tinyOpt, work))
  }

  override def afterAll(): Unit = if (spark != null) spark.stop()

  private def run(options: (String, String)*): JobSummary = Inf2.run(spark, options.toMap.asJava)

  private def parquetInput(name: String, rows: Seq[Row], schema: StructType): Path = {
    val dir = work.resolve(name)
    spark.createDataFrame(rows.asJava, schema).coalesce(1).write.parquet(dir.toString)
    dir
  }

  private val promptSchema = StructType(Seq(
    StructField("key", DataTypes.StringType), StructField("prompt", DataTypes.StringType), StructField("topic", DataTypes.IntegerType)))

  test("the output has the result columns, then the kept ones, and the standalone engine's completions") {
    val input = parquetInput("basic-in", prompts.zipWithIndex.map { case (p, i) => Row(s"k$i", p, i % 3) }, promptSchema)
    val output = work.resolve("basic-out")
    val summary = run("input" -> input.toString, "output" -> output.toString, "idColumn" -> "key", "keepColumns" -> "topic")

    val written = spark.read.parquet(output.toString)
    assert(written.schema.fieldNames.toSeq === ResultArrow.COLUMNS.asScala.toSeq :+ "topic")
    // Parquet gives arrays back with nullable elements, whatever was written.
    assert(written.schema("completion_token_ids").dataType.asInstanceOf[ArrayType].elementType === DataTypes.IntegerType)
    assert(written.schema("devices").dataType.asInstanceOf[ArrayType].elementType === DataTypes.StringType)
    assert(written.schema("prefill_ms").dataType === DataTypes.DoubleType)

    val byId = readOutput(spark, output)
    assert(byId.keySet === prompts.indices.map(i => s"k$i").toSet)
    val reference = standalone(tinyOpt, prompts)
    prompts.indices.foreach { i =>
      val row = byId(s"k$i")
      val expected = reference(i)
      assert(row("prompt") === prompts(i))
      assert(row("error") === null)
      assert(intList(row("completion_token_ids")) === expected.completionTokens.toSeq, s"row k$i")
      assert(row("completion") === expected.completion)
      assert(row("prompt_tokens") === expected.promptTokens.length)
      assert(row("completion_tokens") === expected.completionTokens.length)
      assert(row("finish_reason") === expected.finishReason.label)
      assert(row("executor") === "driver")
      assert(row("devices").asInstanceOf[scala.collection.Seq[String]].toSeq === expected.servedBy.asScala.toSeq)
      assert(row("prefill_ms").asInstanceOf[Double] > 0)
      assert(row("topic") === i % 3)
    }
    assert(summary.rows === 12)
    assert(summary.errorRows === 0)
    assert(summary.skippedRows === 0)
    assert(summary.completionTokens === reference.map(_.completionTokens.length.toLong).sum)
    assert(summary.promptTokens === reference.map(_.promptTokens.length.toLong).sum)
    assert(summary.output === s"file:$output")
    assert(summary.describe().startsWith("INF2 job done: 12 rows (0 errors) in "), summary.describe())
    assert(GenerateRows.arrowBytesInUse() === 0, "every result batch's Arrow memory is freed")
  }

  test("rows without a seed of their own sample with one derived from the job seed and their id") {
    val input = writeLines(work.resolve("seed-in/prompts.jsonl"),
      (0 until 4).map(i => s"""{"id": "same-$i", "prompt": "One prompt for every row"}""") ++ Seq(
        """{"id": "own", "prompt": "One prompt for every row", "seed": 11}""",
        """{"id": "own-again", "prompt": "One prompt for every row", "seed": 11}"""))
    def sample(out: String): Map[String, Seq[Int]] = {
      run("input" -> input.toString, "output" -> work.resolve(out).toString, "idColumn" -> "id",
        "temperature" -> "1.5", "seed" -> "3")
      readOutput(spark, work.resolve(out)).map { case (id, row) => id -> intList(row("completion_token_ids")) }
    }
    val first = sample("seed-out1")
    assert(first.size === 6)
    assert(sample("seed-out2") === first, "every run gives each row the same seed")
    assert((0 until 4).map(i => first(s"same-$i")).distinct.size > 1, s"identical prompts in different rows: $first")
    assert(first("own") === first("own-again"), "a row's own seed is used as it is")
  }

  test("bad rows become output rows with their error set, and the good rows around them are generated") {
    val tooLong = Seq.fill(600)("word").mkString(" ")
    val input = writeLines(work.resolve("bad-in/prompts.jsonl"), Seq(
      """{"id": "ok", "prompt": "A fine prompt"}""",
      """{"id": "null", "prompt": null}""",
      """{"id": "missing"}""",
      """{"id": "empty", "prompt": ""}""",
      s"""{"id": "too-long", "prompt": "$tooLong"}""",
      """{"id": "cold", "prompt": "Negative temperature", "temperature": -1}""",
      """{"id": "words", "prompt": "Words for a count", "max_new_tokens": "many"}""",
      """{"id": "short", "prompt": "Only two tokens", "max_new_tokens": 2}""",
      """{"id": "top-p", "prompt": "Top p of zero", "top_p": 0}""",
      """{"id": "stops", "prompt": "Stop ids as a list", "stop_token_ids": [5, -3]}""",
      """{"id": "seed", "prompt": "A seed past the long range", "seed": 1e19}"""))
    val output = work.resolve("bad-out")
    val summary = run("input" -> input.toString, "output" -> output.toString, "idColumn" -> "id")

    val byId = readOutput(spark, output)
    assert(byId.size === 11, "every input row has an output row")
    def error(id: String) = byId(id)("error").asInstanceOf[String]
    assert(error("ok") === null)
    assert(byId("ok")("completion_tokens") === MaxNewTokens)
    assert(error("null") === "promptColumn \"prompt\" is null")
    assert(error("missing") === "promptColumn \"prompt\" is null")
    assert(error("empty") === "empty prompt")
    assert(error("too-long").matches("prompt has \\d+ tokens; the model's context window is 512 .*"), error("too-long"))
    assert(byId("too-long")("prompt") === tooLong)
    assert(error("cold") === "column temperature=\"-1\": must be from 0 to 100")
    assert(error("words").startsWith("column max_new_tokens=\"many\": "), error("words"))
    assert(error("top-p").startsWith("column top_p=\"0\": must be from "), error("top-p"))
    assert(error("stops") === "column stop_token_ids=\"5,-3\": must be non-negative token ids")
    assert(error("seed").startsWith("column seed=\"10000000000000000000\": "), error("seed"))
    assert(error("short") === null)
    assert(byId("short")("completion_tokens").asInstanceOf[Int] <= 2)
    Seq("null", "missing", "empty", "too-long", "cold", "words", "top-p", "stops", "seed").foreach { id =>
      assert(byId(id)("finish_reason") === "error")
      assert(byId(id)("completion") === null)
      assert(byId(id)("completion_token_ids") === null)
      assert(!error(id).contains("\n"))
    }
    assert(summary.rows === 11)
    assert(summary.errorRows === 9)

    val unparsable = writeLines(work.resolve("bad-in2/prompts.jsonl"), Seq("""{"prompt": "Fine"}""", "not json at all"))
    val output2 = work.resolve("bad-out2")
    run("input" -> unparsable.toString, "output" -> output2.toString)
    val rows = readOutput(spark, output2).values.toSeq
    assert(rows.map(r => (r("prompt"), r("error"))).toSet ===
      Set(("Fine", null), (null, "the input line does not parse: not json at all")))

    val empty = writeLines(work.resolve("bad-in3/prompts.jsonl"), Seq())
    val noRows = intercept[ConfigException](run("input" -> empty.toString, "output" -> work.resolve("bad-out3").toString))
    assert(noRows.getMessage === s"input \"$empty\": no jsonl rows to read columns from (its files are empty)")
  }

  test("a partitioned input directory is read with its partition columns, whatever its depth") {
    val input = work.resolve("partitioned-in")
    spark.createDataFrame((0 until 6).map(i => Row(s"Partitioned prompt $i", i % 2, i % 3)).asJava,
      StructType(Seq(StructField("prompt", DataTypes.StringType), StructField("day", DataTypes.IntegerType),
        StructField("shard", DataTypes.IntegerType)))).write.partitionBy("day", "shard").parquet(input.toString)
    val output = work.resolve("partitioned-out")
    run("input" -> input.toString, "output" -> output.toString, "keepColumns" -> "day,shard")
    val rows = readOutput(spark, output).values.toSeq
    assert(rows.map(r => (r("prompt"), r("day"), r("shard"))).toSet ===
      (0 until 6).map(i => (s"Partitioned prompt $i", i % 2, i % 3)).toSet)
    assert(rows.forall(_("error") == null))
  }

  test("parquet, jsonl, csv and text inputs give the same completions; generated ids are file and line") {
    val lines = prompts.take(6)
    val reference = standalone(tinyOpt, lines)
    val csvLines = Seq("prompt,note") ++ lines.map(p => s""""$p","n"""")
    val inputs = Map(
      "parquet" -> parquetInput("formats/in.parquet", lines.map(p => Row(null, p, 0)), promptSchema),
      "jsonl" -> writeLines(work.resolve("formats/in.jsonl"), lines.map(p => s"""{"prompt": "$p"}""")),
      "csv" -> writeLines(work.resolve("formats/in.csv"), csvLines),
      "text" -> writeLines(work.resolve("formats/in.txt"), lines))
    inputs.foreach { case (format, input) =>
      val output = work.resolve(s"formats-out-$format")
      run("input" -> input.toString, "output" -> output.toString)
      val rows = readOutput(spark, output).values.toSeq
      assert(rows.size === 6, format)
      rows.foreach { r =>
        val id = r("id").asInstanceOf[String]
        assert(id.matches("[0-9a-f]{16}:[0-5]"), s"$format id $id")
        val line = id.split(":")(1).toInt
        assert(r("prompt") === lines(line), s"$format row $line")
        assert(intList(r("completion_token_ids")) === reference(line).completionTokens.toSeq, s"$format row $line")
      }
    }
    val multiLine = writeLines(work.resolve("formats/multiline.csv"), Seq("prompt", "\"first line", "second, line\"", "plain"))
    val output = work.resolve("formats-out-multiline")
    run("input" -> multiLine.toString, "output" -> output.toString)
    assert(readOutput(spark, output).values.map(_("prompt")).toSet === Set("first line\nsecond, line", "plain"))
    val unknown = writeLines(work.resolve("formats/prompts.dat"), lines)
    val e = intercept[ConfigException](run("input" -> unknown.toString, "output" -> work.resolve("x").toString))
    assert(e.getMessage.contains("cannot tell the format from the file names (unknown (prompts.dat)); give --input-format"))
  }

  test("generated ids are row positions in the file, whatever the split size") {
    val lines = (0 until 400).map(i => s"line $i " + ("padding " * (i % 7)))
    val input = writeLines(work.resolve("split/in.txt"), lines)
    def ids(): Map[String, String] = {
      val config = JobConfig.merge(JobConfig.fromSparkConf(spark.sparkContext.getConf), Map.empty[String, String].asJava)
      val prepared = PromptPreparation.prepare(spark, JobInput.read(spark, input.toString, "text"), config)
      assert(prepared.rowCount === 400)
      prepared.rows.select(PromptPreparation.ID, PromptPreparation.PROMPT).collect()
        .map(r => r.getString(0) -> r.getString(1)).toMap
    }
    val whole = ids()
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1024")
    spark.conf.set("spark.sql.files.openCostInBytes", "0")
    val split = try {
      assert(spark.read.text(input.toString).rdd.getNumPartitions > 5, "the small split size must split the file")
      ids()
    } finally {
      spark.conf.unset("spark.sql.files.maxPartitionBytes")
      spark.conf.unset("spark.sql.files.openCostInBytes")
    }
    assert(split === whole)
    val hash = whole.keys.head.split(":")(0)
    assert(whole === lines.indices.map(i => s"$hash:$i" -> lines(i)).toMap)
  }

  /** Rows of `ids` that `repartition(partitions, id)` sends to `partition` (Spark's hash is the partitioner's Murmur3). */
  private def rowsInPartition(ids: Seq[String], partitions: Int, partition: Int, where: String = "true"): Long = {
    spark.createDataFrame(ids.map(Row(_)).asJava, StructType(Seq(StructField("id", DataTypes.StringType))))
      .where(where).where(s"pmod(hash(id), $partitions) = $partition").count()
  }

  test("a task that fails part-way is retried and the output has every row exactly once") {
    // Fixed ids, so that which rows the failing partition gets does not depend on the temporary path.
    val ids = (0 until 24).map(i => s"retry-$i")
    assert(rowsInPartition(ids, 3, 1) >= 3, "the failure is injected after partition 1's third row")
    val input = writeLines(work.resolve("retry-in/in.jsonl"), ids.zipWithIndex.map { case (id, i) =>
      s"""{"key": "$id", "prompt": "Retry prompt $i"}""" })
    val output = work.resolve("retry-out")
    val failed = new FailedTasks
    spark.sparkContext.addSparkListener(failed)
    spark.conf.set(TaskFailureInjection.KEY, "partition=1,afterRows=3")
    val summary = try run("input" -> input.toString, "output" -> output.toString, "idColumn" -> "key", "partitions" -> "3",
      "rowsPerBatch" -> "2")
    finally spark.conf.unset(TaskFailureInjection.KEY)
    // Listener events arrive asynchronously: wait for the failure before removing the listener.
    val deadline = System.nanoTime() + 10_000_000_000L
    try while (failed.count == 0 && System.nanoTime() < deadline) Thread.sleep(20)
    finally spark.sparkContext.removeSparkListener(failed)
    assert(failed.count === 1, "the injected failure must have happened once")
    val rows = readOutput(spark, output)
    assert(rows.size === 24)
    assert(rows.values.map(_("prompt")).toSet === (0 until 24).map(i => s"Retry prompt $i").toSet)
    assert(summary.rows === 24, "the failed attempt's rows are not counted")
  }

  test("resume after a run that failed part-way generates only what is missing, without duplicates") {
    val all = (0 until 30).map(i => s"Resume prompt $i")
    val ids = all.indices.map(i => s"resume-$i")
    // Commit step 1 of 3 (by xxhash64 of the id) must give partition 0 a row, for the failure to be injected.
    assert(rowsInPartition(ids, 2, 0, "pmod(xxhash64(id), 3) = 1") >= 1)
    val input = writeLines(work.resolve("resume-in/in.jsonl"), ids.zip(all).map { case (id, p) =>
      s"""{"key": "$id", "prompt": "$p"}""" })
    val output = work.resolve("resume-out")
    val options = Seq("input" -> input.toString, "output" -> output.toString, "idColumn" -> "key", "commitRows" -> "10",
      "partitions" -> "2")
    spark.conf.set(TaskFailureInjection.KEY, "partition=0,afterRows=1,commitStep=1,attempts=all")
    val failure = try intercept[Exception](run(options: _*)) finally spark.conf.unset(TaskFailureInjection.KEY)
    assert(messages(failure).exists(_.contains("injected failure")), messages(failure))
    val firstRun = readOutput(spark, output)
    assert(firstRun.nonEmpty && firstRun.size < 30, s"the first commit step must be in the output: ${firstRun.size} rows")

    val summary = run(options :+ ("resume" -> "true"): _*)
    assert(summary.skippedRows === firstRun.size)
    assert(summary.rows === 30 - firstRun.size)
    val rows = readOutput(spark, output)
    assert(rows.size === 30)
    assert(rows.values.map(_("prompt")).toSet === all.toSet)
    firstRun.foreach { case (id, row) => assert(rows(id) === row, s"resume must leave row $id as it was") }

    val again = run(options :+ ("resume" -> "true"): _*)
    assert(again.rows === 0)
    assert(again.skippedRows === 30)
    assert(readOutput(spark, output).size === 30)
  }

  test("resume discards task files a crashed run left uncommitted, so no row is there twice") {
    val all = (0 until 20).map(i => s"Crash prompt $i")
    val input = writeLines(work.resolve("crash-in/in.txt"), all)
    val options = Seq("input" -> input.toString, "partitions" -> "2")
    val complete = work.resolve("crash-complete")
    run(options :+ ("output" -> complete.toString): _*)
    val parts = Files.list(complete).iterator().asScala.filter(_.getFileName.toString.startsWith("part-")).toSeq.sorted
    assert(parts.size >= 2, parts)
    // The driver died after one task committed and before the job did: its file is still under _temporary.
    val output = Files.createDirectories(work.resolve("crash-out"))
    parts.tail.foreach(p => Files.copy(p, output.resolve(p.getFileName)))
    val task = Files.createDirectories(output.resolve("_temporary/0/task_202611270000_0000_m_000000"))
    Files.copy(parts.head, task.resolve(parts.head.getFileName))
    val summary = run(options ++ Seq("output" -> output.toString, "resume" -> "true"): _*)
    val rows = readOutput(spark, output)
    assert(rows.size === 20)
    assert(rows.values.map(_("prompt")).toSet === all.toSet)
    assert(summary.rows + summary.skippedRows === 20)
    assert(!Files.exists(output.resolve("_temporary")))
  }

  test("resume refuses an output none of whose ids are in the input") {
    val output = work.resolve("foreign-out")
    run("input" -> writeLines(work.resolve("foreign-a/in.txt"), prompts.take(3)).toString, "output" -> output.toString)
    val moved = writeLines(work.resolve("foreign-b/in.txt"), prompts.take(3))
    val e = intercept[ConfigException](run("input" -> moved.toString, "output" -> output.toString, "resume" -> "true"))
    assert(e.getMessage === s"output \"$output\" has 3 rows but none of their ids is in this input (ids of file inputs " +
      "come from the file's path and line, or from idColumn): resume with the input and idColumn of the run that wrote " +
      "it, or write elsewhere")
    assert(readOutput(spark, output).size === 3)
  }

  test("an existing output is an error unless overwritten or resumed; resume needs the same columns") {
    val input = writeLines(work.resolve("mode-in/in.txt"), prompts.take(3))
    val output = work.resolve("mode-out")
    run("input" -> input.toString, "output" -> output.toString)
    val exists = intercept[ConfigException](run("input" -> input.toString, "output" -> output.toString))
    assert(exists.getMessage === s"output \"$output\" already exists; give --output-mode overwrite to replace it or --resume to finish it")
    val other = writeLines(work.resolve("mode-in2/in.txt"), prompts.slice(5, 7))
    run("input" -> other.toString, "output" -> output.toString, "outputMode" -> "overwrite")
    assert(readOutput(spark, output).values.map(_("prompt")).toSet === prompts.slice(5, 7).toSet)
    val both = intercept[ConfigException](run("input" -> other.toString, "output" -> output.toString,
      "outputMode" -> "overwrite", "resume" -> "true"))
    assert(both.getMessage === "--resume keeps the output and --output-mode overwrite replaces it: give one of them")
    val keyed = parquetInput("mode-in3", Seq(Row("a", "p", 1)), promptSchema)
    val columns = intercept[ConfigException](run("input" -> keyed.toString, "output" -> output.toString,
      "keepColumns" -> "topic", "resume" -> "true"))
    assert(columns.getMessage.contains("resume with the same keepColumns, or write elsewhere"), columns.getMessage)
  }

  test("settings errors name the setting and the column in one line") {
    val input = parquetInput("errors-in", Seq(Row("a", "p", 1)), promptSchema)
    def error(options: (String, String)*): String =
      intercept[ConfigException](run(("input" -> input.toString) +: ("output" -> work.resolve("errors-out").toString) +: options: _*)).getMessage
    assert(error("promptColumn" -> "text") === "promptColumn \"text\": no such column in the input (columns: key, prompt, topic)")
    assert(error("promptColumn" -> "topic") === "promptColumn \"topic\" has type int; prompts must be strings")
    assert(error("keepColumns" -> "prompt") === "keepColumns: \"prompt\" is also a result column; rename it in the input or leave it out")
    assert(error("idColumn" -> "nope").startsWith("idColumn \"nope\": no such column"))
    assert(error("parameterColumns" -> "temperature") === "parameterColumns \"temperature\": no such column in the input (columns: key, prompt, topic)")
    assert(error("maxNewTokens" -> "0") === "spark.inf2.maxNewTokens=\"0\": must be from 1 to 1048576")
    assert(error("inputFormat" -> "xml") === "spark.inf2.inputFormat=\"xml\": must be one of auto, parquet, jsonl, csv, text")
    assert(error("model" -> "/elsewhere").startsWith("model=\"/elsewhere\": spark.inf2.model is fixed when the session starts"))
    def idError(rows: Row*): String = intercept[ConfigException](run("input" -> parquetInput(s"errors-ids-${rows.size}",
      rows, promptSchema).toString, "output" -> work.resolve("errors-out").toString, "idColumn" -> "key")).getMessage
    assert(idError(Row("a", "p", 1), Row("a", "q", 2), Row(null, "r", 3)) === "idColumn \"key\" is null in 1 row(s); every row needs an id")
    assert(idError(Row("a", "p", 1), Row("a", "q", 2), Row("b", "r", 3), Row("a", "s", 4)) ===
      "idColumn \"key\" is not unique: 1 value(s) repeat, e.g. \"a\" (3 times)")
    assert(!Files.exists(work.resolve("errors-out")), "nothing is written when the settings are wrong")
  }
}
