package io.inf2.plugin

import java.lang.management.ManagementFactory
import java.nio.file.{Files, Path}
import javax.management.ObjectName

import scala.jdk.CollectionConverters._

import io.inf2.config.{ConfigException, Inf2Config, Settings}
import io.inf2.engine.{EngineOptions, InferenceEngine, ProgressListener}
import org.apache.spark.SparkConf
import org.scalatest.funsuite.AnyFunSuite

import PluginTestSupport._

/** The plugin in Spark's local[N] mode, where the executor plugin runs in the driver JVM as executor "driver". */
class Inf2SparkPluginSuite extends AnyFunSuite {

  private def runtimeViews(conf: SparkConf): Seq[(String, List[String])] =
    withContext(conf) { sc =>
      sc.parallelize(1 to 4, 4).map { _ =>
        val runtime = Inf2ExecutorRuntime.get()
        (runtime.executorId, runtime.deviceNames.asScala.toList)
      }.collect().toSeq.distinct
    }

  /** The plugin's gauges as a JMX sink publishes them (set spark.metrics.conf.*.sink.jmx.class). */
  private def pluginGauges(): Map[String, AnyRef] = {
    val server = ManagementFactory.getPlatformMBeanServer
    server.queryNames(new ObjectName("metrics:*"), null).asScala.toList
      .map(n => n -> n.getKeyProperty("name"))
      .collect { case (n, name) if name != null && name.contains("plugin.io.inf2.plugin.Inf2SparkPlugin.") =>
        name.substring(name.lastIndexOf('.') + 1) -> server.getAttribute(n, "Value")
      }.toMap
  }

  test("with nothing configured, the executor runs on the CPU with two emulated CSDs that shutdown removes") {
    val work = freshDirectory("embedded")
    val conf = pluginConf("local[2]", work)
    val (views, devicesDuringRun) = withContext(conf) { sc =>
      val views = sc.parallelize(1 to 4, 4).map { _ =>
        val runtime = Inf2ExecutorRuntime.get()
        (runtime.executorId, runtime.deviceNames.asScala.toList)
      }.collect().toSeq.distinct
      val dirs = views.flatMap(_._2).filter(_.startsWith("csd:")).map(d => Path.of(d.stripPrefix("csd:")))
      (views, dirs.map(d => d -> Files.isDirectory(d)))
    }
    assert(views.size === 1, "all tasks must share one runtime")
    val (executorId, devices) = views.head
    assert(executorId === "driver")
    assert(devices.head === "cpu")
    assert(devices.tail.map(_.replaceAll(".*/", "")) === List("csd0", "csd1"))
    devices.tail.foreach(d => assert(d.startsWith("csd:" + work.resolve("inf2-work")) && d.contains("/executor-driver/")))
    assert(devicesDuringRun.forall(_._2), devicesDuringRun)
    devicesDuringRun.foreach { case (dir, _) => assert(!Files.exists(dir), s"$dir must be deleted at shutdown") }
    val e = intercept[IllegalStateException](Inf2ExecutorRuntime.get())
    assert(e.getMessage.endsWith("spark.plugins must include io.inf2.plugin.Inf2SparkPlugin"))
  }

  test("in local mode devices come from spark.inf2.csd and spark.inf2.backend, and are left in place; " +
    "the engine's threads default to the executor's cores") {
    val work = freshDirectory("configured")
    val a = Files.createDirectories(work.resolve("dev-a"))
    val b = Files.createDirectories(work.resolve("dev-b"))
    val conf = pluginConf("local[2]", work).set("spark.inf2.csd", s"$a,$b").set("spark.inf2.backend", "cpu")
      .set("spark.inf2.kvCache", "csd").set("spark.executor.cores", "1")
    val (views, threads) = withContext(conf) { sc =>
      val runtimes = sc.parallelize(1 to 2, 2).map { _ =>
        val runtime = Inf2ExecutorRuntime.get()
        (runtime.executorId, runtime.deviceNames.asScala.toList, runtime.config().get(Settings.THREADS).intValue)
      }.collect().toSeq.distinct
      (runtimes.map(r => (r._1, r._2)), runtimes.map(_._3))
    }
    assert(views === Seq(("driver", List("cpu", s"csd:$a", s"csd:$b"))))
    assert(threads === Seq(1), "threads=0 (all cores) means the executor's cores")
    assert(Files.isDirectory(a) && Files.isDirectory(b))
  }

  test("the engine's counters are gauges in Spark's metrics system") {
    val work = freshDirectory("metrics")
    val conf = pluginConf("local[2]", work)
      .set("spark.metrics.conf.*.sink.jmx.class", "org.apache.spark.metrics.sink.JmxSink")
    val gauges = withContext(conf) { sc =>
      sc.parallelize(1 to 2, 2).map(_ => Inf2ExecutorRuntime.get().activeTasks()).collect()
      pluginGauges()
    }
    assert(gauges.keySet === Set("requests", "failedRequests", "promptTokens", "tokensGenerated", "tokensPerSecond",
      "prefillTimeMs", "decodeTimeMs", "kvDeviceBytesRead", "kvDeviceBytesWritten", "linkBytes", "writebackBufferedBytes",
      "xcacheRecomputedBytes", "pagesWritten", "weightBytesRead", "activeTasks"))
    assert(gauges("tokensGenerated") === 0L)
    assert(gauges("activeTasks") === 0)
  }

  test("tasks share the executor's engine and generate what the engine generates on its own") {
    val work = freshDirectory("generate")
    val model = writeTinyModel(work.resolve("tiny-opt"))
    val conf = pluginConf("local[2]", work).set("spark.inf2.model", model.toString)
      .set("spark.inf2.maxConcurrentTasks", "2")
      .set("spark.metrics.conf.*.sink.jmx.class", "org.apache.spark.metrics.sink.JmxSink")
    val (rows, tokensGauge) = withContext(conf) { sc =>
      val rows = generateOnExecutors(sc, rows = 6, partitions = 3)
      (rows, pluginGauges().apply("tokensGenerated"))
    }
    assert(rows.map(_.id).sorted === (0 until 6).map(i => s"r$i"))
    rows.foreach(r => assert(r.error === null, r))
    assert(rows.map(_.executorId).toSet === Set("driver"))

    val alone = InferenceEngine.open(EngineOptions.from(
      Inf2Config.defaults().`with`(Settings.MODEL, model.toString, Settings.all()).`with`(Settings.BACKEND, "cpu", Settings.all())))
    try {
      val expected = alone.generate((0 until 6).map(request).asJava, ProgressListener.NONE).asScala.map(r => r.id -> r.completionTokens.toList).toMap
      rows.foreach(r => assert(r.completion === expected(r.id), r.id))
    } finally alone.close()
    assert(tokensGauge === rows.map(_.completion.size.toLong).sum, "the tokensGenerated gauge counts what the tasks generated")
  }

  test("with kvCache=csd the engine keeps its cache on the executor's emulated CSDs") {
    val work = freshDirectory("generate-csd")
    val model = writeTinyModel(work.resolve("tiny-opt"))
    // Pages of 2 tokens, so that short prompts fill pages and reach the devices.
    val conf = pluginConf("local[2]", work).set("spark.inf2.model", model.toString).set("spark.inf2.kvCache", "csd")
      .set("spark.inf2.writebackTokens", "2")
    val (rows, (written, pages, read)) = withContext(conf) { sc =>
      val rows = generateOnExecutors(sc, rows = 4, partitions = 2)
      (rows, sc.parallelize(Seq(1), 1).map { _ =>
        val kv = Inf2ExecutorRuntime.get().statistics().kv()
        (kv.deviceWriteBytes, kv.pagesWritten, kv.deviceReadBytes)
      }.first())
    }
    rows.foreach(r => assert(r.error === null, r))
    assert(rows.forall(_.servedBy.size === 3), rows.map(_.servedBy))
    assert(written > 0 && pages > 0, "keys and values must have been written to the devices")
    assert(read > 0, "decode attention must have read the devices")
  }

  test("a model on a non-local file system is copied once into the host's model cache") {
    val work = freshDirectory("remote-model")
    val model = writeTinyModel(work.resolve("tiny-opt"))
    val remoteUri = s"${RemoteLikeFileSystem.Scheme}://$model"
    val conf = pluginConf("local[2]", work).set("spark.inf2.model", remoteUri)
      .set("spark.hadoop.fs.inf2remote.impl", classOf[RemoteLikeFileSystem].getName)
    val rows = withContext(conf)(sc => generateOnExecutors(sc, rows = 2, partitions = 2))
    rows.foreach(r => assert(r.error === null, r))
    val cache = work.resolve("model-cache")
    val entries = Files.list(cache).iterator().asScala.filter(Files.isDirectory(_)).toList
    assert(entries.size === 1, entries)
    assert(Files.exists(entries.head.resolve(".inf2-cache-manifest.json")))
    assert(Files.mismatch(entries.head.resolve("config.json"), model.resolve("config.json")) === -1L)

    val again = withContext(conf)(sc => generateOnExecutors(sc, rows = 2, partitions = 1))
    assert(again.map(r => r.id -> r.completion).toMap === rows.map(r => r.id -> r.completion).toMap)
  }

  test("a wrong key or value stops the application before any task, with the key named") {
    val work = freshDirectory("bad-config")
    val cases = Seq(
      Map("spark.inf2.maxConcurrentTasks" -> "0") -> "spark.inf2.maxConcurrentTasks=\"0\": must be from 1 to 1024",
      Map("spark.inf2.batchSise" -> "8") -> "unknown setting spark.inf2.batchSise (did you mean batchSize?)",
      Map("spark.inf2.kvCache" -> "flash") -> "spark.inf2.kvCache=\"flash\": must be one of memory, gpu, csd, storage",
      Map("spark.inf2.model" -> work.resolve("missing-model").toString) -> "missing-model\": no such directory",
      Map("spark.task.resource.csd.amount" -> "1", "spark.executor.resource.csd.amount" -> "1") ->
        "spark.task.resource.csd.amount=1: master local[2] gives tasks no resources")
    for ((settings, expected) <- cases) {
      val conf = pluginConf("local[2]", work).setAll(settings)
      val failure = intercept[Throwable](withContext(conf)(_ => ()))
      val configMessages = Iterator.iterate(failure)(_.getCause).takeWhile(_ != null)
        .collect { case c: ConfigException => c.getMessage }.toList
      assert(configMessages.exists(_.contains(expected)), s"$settings: ${messages(failure)}")
    }
    assert(runtimeViews(pluginConf("local[1]", work)).map(_._1) === Seq("driver"), "a good context starts after the failures")
  }

  test("a task that needs the engine before spark.inf2.model is set fails with the key named") {
    val work = freshDirectory("no-model")
    val failure = intercept[Exception] {
      withContext(pluginConf("local[1]", work)) { sc =>
        sc.parallelize(Seq(1), 1).map(_ => Inf2ExecutorRuntime.get().acquire().close()).collect()
      }
    }
    assert(messages(failure).exists(_.contains("spark.inf2.model is not set: executor driver has no model to open")),
      messages(failure))
  }

  test("without the plugin, a task asking for the runtime is told to enable it") {
    val work = freshDirectory("no-plugin")
    val conf = pluginConf("local[1]", work).remove("spark.plugins")
    val failure = intercept[Exception] {
      withContext(conf)(sc => sc.parallelize(Seq(1), 1).map(_ => Inf2ExecutorRuntime.get().executorId).collect())
    }
    assert(messages(failure).exists(_.contains("spark.plugins must include io.inf2.plugin.Inf2SparkPlugin")),
      messages(failure))
  }
}
