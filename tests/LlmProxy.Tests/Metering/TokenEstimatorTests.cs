using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Metering;
using LlmProxy.OpenAi;

namespace LlmProxy.Tests.Metering;

public sealed class TokenEstimatorTests
{
    [Theory]
    [InlineData("", 0)]
    [InlineData("a", 1)]
    [InlineData("abcd", 1)]
    [InlineData("abcde", 2)]
    [InlineData("hello world!!", 4)]
    public void EstimateText_FourCharactersPerToken_RoundsUp(string text, int expected)
    {
        Assert.Equal(expected, TokenEstimator.EstimateText(text));
    }

    [Fact]
    public void EstimateMessages_CountsFramingNamesAndText()
    {
        var messages = JsonNode.Parse("""[{"role":"system","content":"abcd"},{"role":"user","name":"bob","content":"12345678"}]""")!.AsArray();

        // framing: 3 (reply) + 3 × 2 messages + 1 name = 10; text: 4 + 3 + 8 = 15 chars = 4 tokens
        Assert.Equal(14, TokenEstimator.EstimateMessages(messages));
    }

    [Fact]
    public void EstimateMessages_ContentParts_TextCountedImagesAtBaseCost()
    {
        var messages = JsonNode.Parse("""[{"role":"user","content":[{"type":"text","text":"12345678"},{"type":"image_url","image_url":{"url":"data:..."}}]}]""")!.AsArray();

        // framing 3 + 3, text 8 chars = 2, image 85
        Assert.Equal(93, TokenEstimator.EstimateMessages(messages));
    }

    [Fact]
    public void EstimateMessages_AssistantToolCalls_CountNameAndArguments()
    {
        var messages = JsonNode.Parse("""[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"abcd","arguments":"{\"x\":1}"}}]}]""")!.AsArray();

        // framing 6; "abcd" + {"x":1} = 4 + 7 = 11 chars = 3 tokens
        Assert.Equal(9, TokenEstimator.EstimateMessages(messages));
    }

    [Fact]
    public void EstimatePrompt_IncludesToolDefinitions()
    {
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(
            """{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"""),
            out var request, out _));
        var withoutTools = TokenEstimator.EstimateMessages(request!.Messages);
        var tools = request.Body["tools"]!.ToJsonString().Length;

        Assert.Equal(withoutTools + (tools + 3) / 4, TokenEstimator.EstimatePrompt(request));
    }

    [Fact]
    public void OutputCharacters_CountsContentRefusalReasoningAndToolArguments()
    {
        var chunk = JsonNode.Parse("""
            {"choices":[
              {"index":0,"delta":{"content":"Hello","reasoning_content":"hmm"}},
              {"index":1,"delta":{"refusal":"no","tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\""}}]}}
            ]}
            """)!.AsObject();

        Assert.Equal(5 + 3 + 2 + 1 + 4, TokenEstimator.OutputCharacters(chunk));
    }

    [Fact]
    public void OutputCharacters_UsageChunk_IsZero()
    {
        var chunk = JsonNode.Parse("""{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}""")!.AsObject();
        Assert.Equal(0, TokenEstimator.OutputCharacters(chunk));
    }

    [Fact]
    public void EstimateCompletion_SumsEveryChoice()
    {
        var completion = JsonNode.Parse("""{"choices":[{"message":{"role":"assistant","content":"12345678"}},{"message":{"role":"assistant","content":"abcd"}}]}""")!.AsObject();
        Assert.Equal(3, TokenEstimator.EstimateCompletion(completion));
    }
}
