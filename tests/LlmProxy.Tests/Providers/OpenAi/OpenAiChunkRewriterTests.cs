using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.Pipeline;
using LlmProxy.Providers.OpenAi;

namespace LlmProxy.Tests.Providers.OpenAi;

public sealed class OpenAiChunkRewriterTests
{
    private static (ChunkRewrite Result, string Output, TokenUsage? Usage) Rewrite(string chunk, string model = "client-model", bool keepUsage = true)
    {
        var output = new ArrayBufferWriter<byte>();
        var result = OpenAiChunkRewriter.Rewrite(Encoding.UTF8.GetBytes(chunk), JsonEncodedText.Encode(model).EncodedUtf8Bytes, keepUsage, output, out var usage);
        return (result, Encoding.UTF8.GetString(output.WrittenSpan), usage);
    }

    [Theory]
    // model first, in the middle, last; the rest of the bytes (spacing, escapes, number forms) exactly as the upstream sent them
    [InlineData("""{"model":"up","id":"c"}""", """{"model":"client-model","id":"c"}""")]
    [InlineData("""{"id":"c", "model" : "up" ,"choices":[]}""", """{"id":"c", "model" : "client-model" ,"choices":[]}""")]
    [InlineData("""{"id":"c\u00e9","created":1.0e3,"model":"up"}""", """{"id":"c\u00e9","created":1.0e3,"model":"client-model"}""")]
    // a model value that is not a string is replaced all the same, as setting the property did
    [InlineData("""{"model":null,"id":"c"}""", """{"model":"client-model","id":"c"}""")]
    [InlineData("""{"model":{"name":"up"},"id":"c"}""", """{"model":"client-model","id":"c"}""")]
    public void Rewrite_TopLevelModel_OnlyItsValueChanges(string chunk, string expected)
    {
        var (result, output, _) = Rewrite(chunk);

        Assert.Equal(ChunkRewrite.Chunk, result);
        Assert.Equal(expected, output);
    }

    [Theory]
    [InlineData("""{"id":"c","choices":[]}""", """{"id":"c","choices":[],"model":"client-model"}""")]
    [InlineData("""{}""", """{"model":"client-model"}""")]
    [InlineData("""{ "id":"c" }""", """{ "id":"c" ,"model":"client-model"}""")]
    public void Rewrite_ModelAbsent_AddsTheClientModelLast(string chunk, string expected)
    {
        Assert.Equal(expected, Rewrite(chunk).Output);
    }

    [Fact]
    public void Rewrite_ModelKeysInsideNestedObjectsAndStrings_AreLeftAlone()
    {
        const string chunk = """{"id":"\"model\":\"x\"","choices":[{"index":0,"delta":{"content":"say \"model\": \"up\"","model":"up"}}],"meta":{"model":"up"},"model":"up"}""";

        var (_, output, _) = Rewrite(chunk);

        Assert.Equal(chunk[..^5] + "\"client-model\"}", output);
        var parsed = JsonNode.Parse(output)!;
        Assert.Equal("client-model", parsed["model"]!.GetValue<string>());
        Assert.Equal("up", parsed["meta"]!["model"]!.GetValue<string>());
        Assert.Equal("up", parsed["choices"]![0]!["delta"]!["model"]!.GetValue<string>());
        Assert.Equal("say \"model\": \"up\"", parsed["choices"]![0]!["delta"]!["content"]!.GetValue<string>());
        Assert.Equal("\"model\":\"x\"", parsed["id"]!.GetValue<string>());
    }

    [Fact]
    public void Rewrite_EscapedPropertyName_IsRecognisedAsModel()
    {
        // "\u006dodel" is "model": a reader compares unescaped names, as the JSON tree did.
        Assert.Equal("""{"\u006dodel":"client-model"}""", Rewrite("""{"\u006dodel":"up"}""").Output);
    }

    [Theory]
    [InlineData("modèle-名前", "\"mod\\u00E8le-\\u540D\\u524D\"")]
    [InlineData("a\"b\\c", "\"a\\u0022b\\\\c\"")]
    [InlineData("<tag>&'", "\"\\u003Ctag\\u003E\\u0026\\u0027\"")]
    public void Rewrite_ClientModelName_EscapedAsTheGatewaysJsonWriterDoes(string model, string expectedValue)
    {
        var (_, output, _) = Rewrite("""{"model":"up"}""", model);

        Assert.Equal("{\"model\":" + expectedValue + "}", output);
        Assert.Equal("{\"model\":" + JsonSerializer.Serialize(model) + "}", output);
        Assert.Equal(model, JsonNode.Parse(output)!["model"]!.GetValue<string>());
    }

    [Theory]
    // usage last, first, only, null: cut with its separator, the model still rewritten wherever it is
    [InlineData("""{"id":"c","model":"up","choices":[{"index":0}],"usage":null}""", """{"id":"c","model":"client-model","choices":[{"index":0}]}""")]
    [InlineData("""{"usage":null, "model":"up","choices":[]}""", """{"model":"client-model","choices":[]}""")]
    [InlineData("""{"usage":null,"id":"c"}""", """{"id":"c","model":"client-model"}""")]
    [InlineData("""{"usage":null}""", """{"model":"client-model"}""")]
    [InlineData("""{"model":"up","usage":{"prompt_tokens":1},"id":"c"}""", """{"model":"client-model","id":"c"}""")]
    public void Rewrite_ClientDidNotAskForUsage_UsagePropertyCut(string chunk, string expected)
    {
        var (result, output, _) = Rewrite(chunk, keepUsage: false);

        Assert.Equal(ChunkRewrite.Chunk, result);
        Assert.Equal(expected, output);
    }

    [Fact]
    public void Rewrite_UsageOnlyChunkForAClientThatDidNotAsk_SkippedButUsageRead()
    {
        var (result, output, usage) = Rewrite(
            """{"id":"c","model":"up","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3}}}""",
            keepUsage: false);

        Assert.Equal(ChunkRewrite.Skip, result);
        Assert.Equal("", output);
        Assert.Equal(new TokenUsage(5, 2, 7, 3), usage);
    }

    [Fact]
    public void Rewrite_UsageChunkForAClientThatAsked_KeptAndRead()
    {
        const string chunk = """{"id":"c","model":"up","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}""";

        var (result, output, usage) = Rewrite(chunk);

        Assert.Equal(ChunkRewrite.Chunk, result);
        Assert.Equal(chunk.Replace("\"up\"", "\"client-model\"", StringComparison.Ordinal), output);
        Assert.Equal(new TokenUsage(5, 2, 7), usage);
    }

    [Theory]
    [InlineData("""{"usage":null,"choices":[]}""")]
    [InlineData("""{"choices":[{"index":0,"usage":{"prompt_tokens":9}}]}""")]
    public void Rewrite_NoTopLevelUsageObject_NoUsage(string chunk)
    {
        Assert.Null(Rewrite(chunk, keepUsage: false).Usage);
    }

    [Fact]
    public void Rewrite_ErrorObject_ReportsErrorAndWritesNothing()
    {
        var (result, output, _) = Rewrite("""{"error":{"message":"overloaded","type":"server_error"}}""");

        Assert.Equal(ChunkRewrite.Error, result);
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("""{"model":"up",}""")]
    [InlineData("""{"model":"up"} {}""")]
    [InlineData("""{"model":"up","model":"again"}""")]
    [InlineData("""{"id":"c""")]
    [InlineData("")]
    public void Rewrite_NotOneJsonObject_Malformed(string chunk)
    {
        var (result, output, _) = Rewrite(chunk);

        Assert.Equal(ChunkRewrite.Malformed, result);
        Assert.Equal("", output);
    }
}
