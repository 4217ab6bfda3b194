package io.inf2.plugin

import java.lang.management.ManagementFactory
import java.nio.file.{Files, Path}
import javax.management.ObjectName

import scala.jdk.CollectionConverters._

import io.inf2.config.ConfigException
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

  test("in local mode devices come from spark.inf2.csd and spark.inf2.backend, and are left in place") {
    val work = freshDirectory("configured")
    val a = Files.createDirectories(work.resolve("dev-a"))
    val b = Files.createDirectories(work.resolve("dev-b"))
    val conf = pluginConf("local[2]", work).set("spark.inf2.csd", s"$a,$b").set("spark.inf2.backend", "cpu")
      .set("spark.inf2.kvCache", "csd")
    assert(runtimeViews(conf) === Seq(("driver", List("cpu", s"csd:$a", s"csd:$b"))))
    assert(Files.isDirectory(a) && Files.isDirectory(b))
  }

  test("the engine's counters are gauges in Spark's metrics system") {
    val work = freshDirectory("metrics")
    val conf = pluginConf("local[2]", work)
      .set("spark.metrics.conf.*.sink.jmx.class", "org.apache.spark.metrics.sink.JmxSink")
    val gauges = withContext(conf) { sc =>
      sc.parallelize(1 to 2, 2).map(_ => Inf2ExecutorRuntime.get().activeTasks()).collect()
      val server = ManagementFactory.getPlatformMBeanServer
      server.queryNames(new ObjectName("metrics:*"), null).asScala.toList
        .map(n => n -> n.getKeyProperty("name"))
        .collect { case (n, name) if name != null && name.contains(".plugin.io.inf2.plugin.Inf2SparkPlugin.") =>
          name.substring(name.lastIndexOf('.') + 1) -> server.getAttribute(n, "Value")
        }.toMap
    }
    assert(gauges.keySet === Set("requests", "failedRequests", "promptTokens", "tokensGenerated", "tokensPerSecond",
      "prefillTimeMs", "decodeTimeMs", "csdBytesRead", "csdBytesWritten", "linkBytes", "writebackBufferedBytes",
      "xcacheRecomputedBytes", "pagesWritten", "activeTasks"))
    assert(gauges("tokensGenerated") === 0L)
    assert(gauges("activeTasks") === 0)
  }

  test("a wrong key or value stops the application before any task, with the key named") {
    val work = freshDirectory("bad-config")
    val cases = Seq(
      Map("spark.inf2.maxConcurrentTasks" -> "0") -> "spark.inf2.maxConcurrentTasks=\"0\": must be from 1 to 1024",
      Map("spark.inf2.batchSise" -> "8") -> "unknown setting spark.inf2.batchSise (did you mean batchSize?)",
      Map("spark.inf2.kvCache" -> "flash") -> "spark.inf2.kvCache=\"flash\": must be one of memory, csd, storage",
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
