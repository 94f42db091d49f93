using System.Text;
using LlmProxy.Simulator.Bedrock;
using LlmProxy.Simulator.ChatCompletions;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class BedrockValidationTests
{
    private const string Hi = """{"role":"user","content":[{"text":"hi"}]}""";
    private const string Tools = """ "toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object"}}}}]}""";

    /// <summary>Fills the <c>{Hi}</c> and <c>{Tools}</c> placeholders (JSON is full of braces, so no string interpolation).</summary>
    private static string Fill(string template) =>
        template.Replace("{Hi}", Hi, StringComparison.Ordinal).Replace("{Tools}", Tools, StringComparison.Ordinal);

    private static BedrockError Reject(string json, string modelId = BedrockHttp.ModelId)
    {
        json = Fill(json);
        Assert.False(ConverseRequestParser.TryParse(modelId, Encoding.UTF8.GetBytes(json), out _, out var error));
        return error;
    }

    private static ConverseRequest Accept(string json, string modelId = BedrockHttp.ModelId)
    {
        json = Fill(json);
        Assert.True(ConverseRequestParser.TryParse(modelId, Encoding.UTF8.GetBytes(json), out var request, out var error), error?.Message);
        return request;
    }

    public static TheoryData<string, string> ConversationViolations => new()
    {
        { """{"messages":[]}""", "A conversation must start with a user message. Try again with a conversation that starts with a user message." },
        { "{}", "A conversation must start with a user message. Try again with a conversation that starts with a user message." },
        { """{"messages":[{"role":"assistant","content":[{"text":"Hello"}]}, {Hi}]}""", "A conversation must start with a user message. Try again with a conversation that starts with a user message." },
        { """{"messages":[{Hi},{Hi}]}""", "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again." },
        { """{"messages":[{"role":"user","content":[]}]}""", "The content field in the Message object at messages.0 is empty. Add a ContentBlock object to the content field and try again." },
        { """{"messages":[{"role":"user","content":[{"text":"   "}]}]}""", "The text field in the ContentBlock object at messages.0.content.0 is blank. Add text to the text field, and try again." },
        { """{"messages":[{"role":"user","content":[{"text":"a","image":{"format":"png","source":{"bytes":"AAAA"}}}]}]}""",
          "The ContentBlock object at messages.0.content.0 must set exactly one of: text, image, document, video, toolUse, toolResult, guardContent, cachePoint, reasoningContent, citationsContent. It sets text, image." },
        { """{"messages":[{"role":"user","content":[{}]}]}""",
          "The ContentBlock object at messages.0.content.0 must set exactly one of: text, image, document, video, toolUse, toolResult, guardContent, cachePoint, reasoningContent, citationsContent. It sets none." },
        { """{"messages":[{"role":"user","content":[{"image":{"format":"png","source":{"bytes":"not base64!"}}}]}]}""",
          "The value at messages.0.content.0.image.source.bytes is not valid base64. Encode the image bytes as base64 and try again." },
        { """{"messages":[{Hi},{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_a","content":[{"text":"sunny"}]}}]}]}""",
          "The toolConfig field must be defined when using toolUse and toolResult content blocks." },
        { """{{Tools},"messages":[{Hi},{"role":"assistant","content":[{"text":"ok"}]},{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_a","content":[{"text":"sunny"}]}}]}]}""",
          "The number of toolResult blocks at messages.2.content exceeds the number of toolUse blocks of previous turn." },
        { """{{Tools},"messages":[{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_a","content":[{"text":"sunny"}]}}]}]}""",
          "The number of toolResult blocks at messages.0.content exceeds the number of toolUse blocks of previous turn." },
        { """{{Tools},"messages":[{Hi},{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{}}},{"toolUse":{"toolUseId":"tooluse_b","name":"get_weather","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_b","content":[{"text":"sunny"}]}}]}]}""",
          "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_a" },
        { """{{Tools},"messages":[{Hi},{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_zzz","content":[{"text":"sunny"}]}}]}]}""",
          "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_a" },
        { """{{Tools},"messages":[{Hi},{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{}}}]},{Hi}]}""",
          "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_a" },
        { """{{Tools},"messages":[{Hi},{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_a","content":[],"status":"error"}}]}]}""",
          "The content field at messages.2.content.0.toolResult cannot be empty when status value is error." },
        { """{"toolConfig":{"tools":[{"toolSpec":{"name":"a","inputSchema":{"json":{}}}}],"toolChoice":{"tool":{"name":"b"}}},"messages":[{Hi}]}""",
          "The tool 'b' named in toolConfig.toolChoice is not one of the tools in toolConfig.tools." },
    };

    [Theory]
    [MemberData(nameof(ConversationViolations))]
    public void TryParse_ConversationRuleBroken_ValidationExceptionWithBedrocksMessage(string template, string message)
    {
        var error = Reject(template);

        Assert.Equal((400, "ValidationException", message), (error.StatusCode, error.Type, error.Message));
        Assert.Equal("http://internal.amazon.com/coral/com.amazon.bedrock/", error.Namespace);
    }

    public static TheoryData<string, string> ConstraintViolations => new()
    {
        { """ "inferenceConfig":{"maxTokens":0}""", "1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1" },
        { """ "inferenceConfig":{"temperature":1.5}""", "1 validation error detected: Value '1.5' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1" },
        { """ "inferenceConfig":{"topP":-0.1}""", "1 validation error detected: Value '-0.1' at 'inferenceConfig.topP' failed to satisfy constraint: Member must have value greater than or equal to 0" },
        { """ "inferenceConfig":{"maxTokens":0,"temperature":2}""",
          "2 validation errors detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1; "
          + "Value '2' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1" },
        { """ "inferenceConfig":{"stopSequences":["a","b","c","d","e"]}""", "1 validation error detected: Value '[a, b, c, d, e]' at 'inferenceConfig.stopSequences' failed to satisfy constraint: Member must have length less than or equal to 4" },
        { """ "toolConfig":{"tools":[]}""", "1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1" },
        { """ "toolConfig":{"tools":[{"toolSpec":{"name":"get weather","inputSchema":{"json":{}}}}]}""",
          "1 validation error detected: Value 'get weather' at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$" },
    };

    [Theory]
    [MemberData(nameof(ConstraintViolations))]
    public void TryParse_ApiModelConstraintBroken_ValidationExceptionInAwsForm(string extra, string message)
    {
        var error = Reject("""{"messages":[{Hi}],""" + extra + "}");

        Assert.Equal((400, "ValidationException", message), (error.StatusCode, error.Type, error.Message));
    }

    [Fact]
    public void TryParse_RoleOutsideTheEnum_ReportsOneBasedMemberPath()
    {
        var error = Reject("""{"messages":[{"role":"system","content":[{"text":"x"}]}]}""");

        Assert.Equal(
            "1 validation error detected: Value 'system' at 'messages.1.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
            error.Message);
    }

    [Fact]
    public void TryParse_ImageFormatOutsideTheEnum_ReportsIt()
    {
        var error = Reject("""{"messages":[{"role":"user","content":[{"text":"look"},{"image":{"format":"bmp","source":{"bytes":"AAAA"}}}]}]}""");

        Assert.Equal(
            "1 validation error detected: Value 'bmp' at 'messages.1.member.content.2.member.image.format' failed to satisfy constraint: Member must satisfy enum value set: [png, jpeg, gif, webp]",
            error.Message);
    }

    [Theory]
    [InlineData("png")]
    [InlineData("jpeg")]
    [InlineData("gif")]
    [InlineData("webp")]
    public void TryParse_ImageWithKnownFormatAndBase64Bytes_Accepted(string format)
    {
        var request = Accept("""{"messages":[{"role":"user","content":[{"text":"Describe this"},{"image":{"format":"FORMAT","source":{"bytes":"iVBORw0KGgo="}}}]}]}""".Replace("FORMAT", format, StringComparison.Ordinal));

        Assert.Equal([new ChatMessage("user", "Describe this")], request.Messages);
    }

    [Fact]
    public void TryParse_ModelIdStartingWithUnknown_ResourceNotFound()
    {
        var error = Reject("""{"messages":[{Hi}]}""", modelId: "unknown.model-v1:0");

        Assert.Equal((404, "ResourceNotFoundException"), (error.StatusCode, error.Type));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("""{"messages":"hi"}""")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":"ten"}}""")]
    public void TryParse_BodyNotOfTheRequestShape_SerializationException(string json)
    {
        var error = Reject(json);

        Assert.Equal((400, "SerializationException"), (error.StatusCode, error.Type));
        Assert.Equal("http://internal.amazon.com/coral/com.amazon.coral.service/", error.Namespace);
    }

    [Fact]
    public void TryParse_ConstraintsAreCheckedBeforeTheModelAndTheConversation()
    {
        var error = Reject("""{"messages":[{"role":"assistant","content":[{"text":"x"}]}],"inferenceConfig":{"maxTokens":0}}""", modelId: "unknown-model");

        Assert.StartsWith("1 validation error detected", error.Message);
    }

    [Fact]
    public void TryParse_FullConversation_ReadsTheModelsView()
    {
        var request = Accept("""
            {
              "system":[{"text":"Be brief."},{"cachePoint":{"type":"default"}}],
              "messages":[
                {"role":"user","content":[{"text":"Weather in Paris?"},{"text":"And Rome?"}]},
                {"role":"assistant","content":[{"text":"Let me look."},{"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{"city":"Paris"}}},{"toolUse":{"toolUseId":"tooluse_b","name":"get_weather","input":{"city":"Rome"}}}]},
                {"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_b","content":[{"text":"20C"}]}},{"toolResult":{"toolUseId":"tooluse_a","content":[{"json":{"temp":22}}],"status":"success"}}]}
              ],
              "inferenceConfig":{"maxTokens":50,"stopSequences":["END"],"temperature":0.2,"topP":1},
              {Tools}
            }
            """);

        Assert.Equal(
            [
                new ChatMessage("system", "Be brief."),
                new ChatMessage("user", "Weather in Paris?\nAnd Rome?"),
                new ChatMessage("assistant", "Let me look."),
                new ChatMessage("tool", "20C"),
                new ChatMessage("tool", """{"temp":22}"""),
            ],
            request.Messages);
        Assert.Equal(50, request.MaxTokens);
        Assert.Equal(["END"], request.StopSequences);
        Assert.Equal("get_weather", Assert.Single(request.Tools).Name);
        Assert.Equal(ToolChoiceMode.Auto, request.ToolChoice);
    }

    [Theory]
    [InlineData("""{"auto":{}}""", nameof(ToolChoiceMode.Auto), null)]
    [InlineData("""{"any":{}}""", nameof(ToolChoiceMode.Required), null)]
    [InlineData("""{"tool":{"name":"get_weather"}}""", nameof(ToolChoiceMode.Named), "get_weather")]
    public void TryParse_ToolChoice_MapsToTheGeneratorsModes(string toolChoice, string modeName, string? named)
    {
        var mode = Enum.Parse<ToolChoiceMode>(modeName);
        var request = Accept("""{"messages":[{Hi}],"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{}}}}],"toolChoice":""" + toolChoice + "}}");

        Assert.Equal((mode, named), (request.ToolChoice, request.NamedTool));
    }
}
