package io.inf2.spark

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path, Paths}
import java.util.concurrent.TimeUnit

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.SparkSession
import org.scalatest.funsuite.AnyFunSuite

import JobTestSupport._

/** bin/inf2-submit in a child process: the real spark-submit path, configuration files and JDK lookup included. */
class Inf2SubmitSuite extends AnyFunSuite {

  private val repository: Path = {
    val here = Paths.get("").toAbsolutePath
    if (Files.exists(here.resolve("bin/inf2-submit"))) here else here.getParent
  }

  private case class Finished(status: Int, stdout: String, stderr: String)

  /** Runs bin/inf2-submit from this test's class path (the jars of target/ may not exist yet during `mvn test`). */
  private def submit(work: Path, args: String*): Finished = {
    val stdout = work.resolve("stdout.txt")
    val stderr = work.resolve("stderr.txt")
    val builder = new ProcessBuilder((repository.resolve("bin/inf2-submit").toString +: args).asJava)
      .directory(repository.toFile)
      .redirectOutput(stdout.toFile)
      .redirectError(stderr.toFile)
    val env = builder.environment()
    env.put("INF2_SUBMIT_CLASSPATH", System.getProperty("java.class.path"))
    env.put("JAVA_HOME", System.getProperty("java.home"))
    env.put("INF2_JAVA_OPTS", s"-Djava.io.tmpdir=${Files.createDirectories(work.resolve("tmp"))}")
    val process = builder.start()
    if (!process.waitFor(8, TimeUnit.MINUTES)) {
      process.destroyForcibly()
      fail(s"bin/inf2-submit did not finish in 8 minutes; its output is in $work")
    }
    Finished(process.exitValue(), Files.readString(stdout, StandardCharsets.UTF_8), Files.readString(stderr, StandardCharsets.UTF_8))
  }

  test("bin/inf2-submit runs the job through spark-submit and writes the Parquet the engine's completions") {
    val work = freshDirectory("submit-")
    val prompts = (0 until 5).map(i => s"Submitted prompt $i")
    val input = writeLines(work.resolve("in/prompts.jsonl"), prompts.zipWithIndex.map { case (p, i) => s"""{"key": "k$i", "prompt": "$p"}""" })
    val output = work.resolve("out")
    val finished = submit(work, "--input", input.toString, "--output", output.toString, "--model", tinyOpt.toString,
      "--id-column", "key", "--max-new-tokens", MaxNewTokens.toString, "--batch-size", "2",
      "--conf", s"spark.local.dir=${work.resolve("spark-local")}",
      "--conf", s"spark.inf2.workDir=${work.resolve("inf2-work")}",
      "--conf", s"spark.inf2.modelCacheDir=${work.resolve("model-cache")}",
      "--conf", "spark.ui.enabled=false")
    assert(finished.status === 0, finished.stderr)
    assert(finished.stdout.contains("INF2 job done: 5 rows (0 errors) in "), finished.stdout)
    assert(finished.stdout.contains(s"output: file:$output"), finished.stdout)

    val reference = standalone(tinyOpt, prompts)
    val reader = SparkSession.builder().master("local[1]").appName("read-submitted").config("spark.ui.enabled", "false").getOrCreate()
    try {
      val rows = readOutput(reader, output)
      assert(rows.keySet === prompts.indices.map(i => s"k$i").toSet)
      prompts.indices.foreach { i =>
        assert(rows(s"k$i")("prompt") === prompts(i))
        assert(intList(rows(s"k$i")("completion_token_ids")) === reference(i).completionTokens.toSeq, s"row k$i")
        assert(rows(s"k$i")("devices").asInstanceOf[scala.collection.Seq[String]].exists(_.startsWith("csd")))
      }
    } finally reader.stop()
  }

  test("a wrong option fails before Spark starts, with exit status 2 and one line") {
    val work = freshDirectory("submit-bad-")
    val finished = submit(work, "--input", "x.jsonl", "--output", "y", "--max-new-tokns", "3")
    assert(finished.status === 2)
    val errors = finished.stderr.linesIterator.filter(_.startsWith("inf2 job:")).toList
    assert(errors === List("inf2 job: unknown option --max-new-tokns (did you mean --max-new-tokens?)"), finished.stderr)
    val noModel = submit(work, "--input", "x.jsonl", "--output", "y")
    assert(noModel.status === 2)
    assert(noModel.stderr.linesIterator.filter(_.startsWith("inf2 job:")).toList ===
      List("inf2 job: missing required setting --model (Spark: spark.inf2.model)"), noModel.stderr)
  }

  test("a corrupt input file ends the job with exit status 1 and a last line naming the file") {
    val work = freshDirectory("submit-corrupt-")
    val bad = Files.createDirectories(work.resolve("in")).resolve("bad.parquet")
    Files.write(bad, Array.tabulate[Byte](4096)(i => (i * 31).toByte))
    val finished = submit(work, "--input", work.resolve("in").toString, "--output", work.resolve("out").toString,
      "--model", tinyOpt.toString, "--conf", s"spark.local.dir=${work.resolve("spark-local")}",
      "--conf", s"spark.inf2.workDir=${work.resolve("inf2-work")}", "--conf", "spark.ui.enabled=false")
    assert(finished.status === 1, finished.stderr)
    val last = finished.stderr.linesIterator.filter(_.nonEmpty).toList.last
    assert(last.startsWith("inf2 job failed: ") && last.contains(s"$bad") && last.contains("not a Parquet file"), last)
  }
}
