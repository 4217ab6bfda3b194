package io.inf2.plugin

import java.nio.file.{Files, Path, Paths}
import java.nio.file.attribute.PosixFilePermissions

import scala.jdk.CollectionConverters._

import org.apache.spark.TaskContext
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import PluginTestSupport._

/**
 * The plugin in local-cluster mode: a standalone master and worker in this JVM, executors in JVMs of
 * their own, and the csd resource discovered by conf/csd-discovery.sh and scheduled by Spark.
 */
class Inf2LocalClusterSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val discoveryScript: Path = Paths.get("..", "conf", "csd-discovery.sh").toAbsolutePath.normalize
  private val savedProperties = Seq("spark.testing", "spark.test.home").map(k => k -> Option(System.getProperty(k)))

  // The worker launches executors from "Spark home": without an installation, a directory with an empty
  // jars/ does, given here the way Spark's own tests give it (spark.test.home, read when spark.testing is set);
  // the executors' class path is this JVM's (spark.executor.extraClassPath).
  override def beforeAll(): Unit = {
    val sparkHome = freshDirectory("spark-home")
    Files.createDirectories(sparkHome.resolve("jars"))
    System.setProperty("spark.testing", "true")
    System.setProperty("spark.test.home", sparkHome.toString)
  }

  override def afterAll(): Unit =
    savedProperties.foreach {
      case (k, Some(v)) => System.setProperty(k, v)
      case (k, None) => System.clearProperty(k)
    }

  test("each executor JVM binds every csd device Spark assigns it, tasks get one each for scheduling, and the " +
    "executor's engine keeps its KV cache on all of them") {
    assert(Files.isExecutable(discoveryScript), discoveryScript)
    val work = freshDirectory("local-cluster")
    val model = writeTinyModel(work.resolve("tiny-opt"))
    val devices = Seq("csd-a", "csd-b").map(n => Files.createDirectories(work.resolve(n)).toString)
    val discover = work.resolve("discover-csd.sh")
    Files.writeString(discover,
      s"""#!/usr/bin/env bash
         |INF2_CSD_DIRS='${devices.mkString(",")}' exec '$discoveryScript'
         |""".stripMargin)
    Files.setPosixFilePermissions(discover, PosixFilePermissions.fromString("rwxr-xr-x"))

    val conf = pluginConf("local-cluster[1,2,1024]", work)
      .set("spark.worker.resource.csd.amount", "2")
      .set("spark.worker.resource.csd.discoveryScript", discover.toString)
      .set("spark.executor.resource.csd.amount", "2")
      .set("spark.task.resource.csd.amount", "1")
      .set("spark.executor.extraClassPath", System.getProperty("java.class.path"))
      .set("spark.executor.extraJavaOptions", jvmFlagsForExecutors)
      .set("spark.inf2.model", model.toString)
      .set("spark.inf2.kvCache", "csd")

    val (views, rows) = withContext(conf) { sc =>
      val seen = sc.parallelize(1 to 4, 4).map { _ =>
        val runtime = Inf2ExecutorRuntime.get()
        val taskDevices = TaskContext.get().resourcesJMap().get("csd").addresses.toList
        (runtime.executorId, runtime.deviceNames.asScala.toList, taskDevices, ProcessHandle.current().pid())
      }.collect().toSeq
      val inDriver = intercept[IllegalStateException](Inf2ExecutorRuntime.get())
      assert(inDriver.getMessage.contains("spark.plugins must include"), "the driver JVM runs no executor here")
      (seen, generateOnExecutors(sc, rows = 4, partitions = 2))
    }
    val executors = views.map(v => (v._1, v._2, v._4)).distinct
    assert(executors.size === 1, views)
    val (executorId, deviceNames, pid) = executors.head
    assert(executorId !== "driver")
    assert(pid !== ProcessHandle.current().pid(), "the executor must be a JVM of its own")
    assert(deviceNames.head === "cpu")
    assert(deviceNames.tail.toSet === devices.map("csd:" + _).toSet)
    views.foreach { case (_, _, taskDevices, _) =>
      assert(taskDevices.size === 1 && devices.contains(taskDevices.head), taskDevices)
    }
    rows.foreach(r => assert(r.error === null, r))
    assert(rows.map(_.executorId).toSet === Set(executorId))
    assert(rows.forall(_.servedBy.size === 3), rows.map(_.servedBy))
    devices.foreach(d => assert(Files.isDirectory(Path.of(d)), "devices the cluster assigned are not the plugin's to delete"))
  }
}
