package io.inf2.spark

import java.nio.file.Path

import scala.jdk.CollectionConverters._

import io.inf2.config.{Inf2Config, Settings}
import io.inf2.engine.{EngineOptions, GenerationRequest, InferenceEngine, ProgressListener, SamplingParams}
import org.apache.spark.sql.SparkSession
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import JobTestSupport._

/** Chat rows, rendered with the model's own template (tiny-llama3 has LLaMA-3's). */
class ChatMessagesSuite extends AnyFunSuite with BeforeAndAfterAll {

  private var work: Path = _
  private var spark: SparkSession = _

  override def beforeAll(): Unit = {
    work = freshDirectory("chat-suite-")
    spark = startSession(sessionConf(tinyLlama3, work))
  }

  override def afterAll(): Unit = if (spark != null) spark.stop()

  private def llama3(turns: (String, String)*): String =
    "<|begin_of_text|>" + turns.map { case (role, content) =>
      s"<|start_header_id|>$role<|end_header_id|>\n\n${content.trim}<|eot_id|>"
    }.mkString + "<|start_header_id|>assistant<|end_header_id|>\n\n"

  test("chats as structs or as JSON text are rendered with the model's template and tokenized once") {
    val input = writeLines(work.resolve("chat-in/chats.jsonl"), Seq(
      """{"id": "s", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi there "}]}""",
      """{"id": "u", "messages": [{"role": "user", "content": "What is Spark?"}]}"""))
    val asText = writeLines(work.resolve("chat-in2/chats.jsonl"), Seq(
      """{"id": "t", "chat": "[{\"role\": \"user\", \"content\": \"What is Spark?\"}]"}""",
      """{"id": "bad", "chat": "[{\"role\": \"user\""}""",
      """{"id": "trailing", "chat": "[{\"role\": \"user\", \"content\": \"a\"}] [1]"}""",
      """{"id": "tools", "chat": "[{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\"}]}]"}""",
      """{"id": "empty", "chat": "[]"}"""))
    val structs = Inf2.generate(spark.read.json(input.toString), Map("messagesColumn" -> "messages", "idColumn" -> "id").asJava)
      .collect().map(asMap).map(r => r("id") -> r).toMap
    val texts = Inf2.generate(spark.read.json(asText.toString), Map("messagesColumn" -> "chat", "idColumn" -> "id").asJava)
      .collect().map(asMap).map(r => r("id") -> r).toMap

    val rendered = Map("s" -> llama3("system" -> "Be brief.", "user" -> " Hi there "), "u" -> llama3("user" -> "What is Spark?"))
    assert(structs("s")("prompt") === rendered("s"))
    assert(structs("u")("prompt") === rendered("u"))
    assert(texts("t")("prompt") === rendered("u"))

    val config = Inf2Config.fromNames(Map(Settings.MODEL.name -> tinyLlama3.toString, Settings.KV_CACHE.name -> "memory",
      Settings.BACKEND.name -> "cpu").asJava, Settings.all(), "")
    val engine = InferenceEngine.open(EngineOptions.from(config))
    try {
      val tokens = rendered.map { case (id, text) => id -> engine.tokenizer().encode(text, false) }
      assert(tokens("u").count(_ == engine.model().bosTokenId()) === 1, "the template's BOS only, none added on top")
      val reference = engine.generate(Seq("s", "u").map(id =>
        GenerationRequest.ofTokens(id, tokens(id), SamplingParams.greedy(MaxNewTokens))).asJava, ProgressListener.NONE).asScala
      reference.foreach { r =>
        val row = structs(r.id)
        assert(row("error") === null)
        assert(row("prompt_tokens") === tokens(r.id).length)
        assert(intList(row("completion_token_ids")) === r.completionTokens.toSeq, r.id)
      }
      assert(intList(texts("t")("completion_token_ids")) === reference.find(_.id == "u").get.completionTokens.toSeq)
    } finally engine.close()

    assert(texts("bad")("error").asInstanceOf[String].startsWith("messagesColumn \"chat\" is not valid JSON: "))
    assert(texts("empty")("error") === "messagesColumn \"chat\" has no messages")
    assert(texts("trailing")("error").asInstanceOf[String].startsWith("messagesColumn \"chat\" is not valid JSON: line 1 column "))
    assert(texts("tools")("error") === "messagesColumn \"chat\" message 0 has \"tool_calls\", which is not passed to chat " +
      "templates (only role and content are)")
  }
}
