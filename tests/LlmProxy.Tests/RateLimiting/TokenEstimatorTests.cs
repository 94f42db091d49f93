using System.Text.Json.Nodes;
using LlmProxy.RateLimiting;

namespace LlmProxy.Tests.RateLimiting;

public sealed class TokenEstimatorTests
{
    private static JsonObject Body(string json) => JsonNode.Parse(json)!.AsObject();

    [Fact]
    public void EstimatePrompt_OneMessage_IsCharactersOverFourPlusOverhead()
    {
        // "Hello there" = 11 characters -> 3 tokens; + 4 for the message + 3 for the reply.
        var prompt = TokenEstimator.EstimatePrompt(Body("""{"messages":[{"role":"user","content":"Hello there"}]}"""));

        Assert.Equal(10, prompt);
    }

    [Fact]
    public void EstimatePrompt_PartsToolCallsAndTools_CountTheirText()
    {
        var body = Body("""
            {"messages":[
              {"role":"system","content":"abcd"},
              {"role":"user","content":[{"type":"text","text":"abcdefgh"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"abcd","arguments":"{}"}}]}],
             "tools":[{"type":"function","function":{"name":"f"}}]}
            """);
        var toolsLength = """[{"type":"function","function":{"name":"f"}}]""".Length;
        var characters = 4 + 8 + 4 + 2 + toolsLength;

        var prompt = TokenEstimator.EstimatePrompt(body);

        Assert.Equal(3 + 3 * 4 + TokenEstimator.TokensPerImage + (characters + 3) / 4, prompt);
    }

    [Theory]
    [InlineData("""{"messages":[],"max_completion_tokens":50,"max_tokens":10}""", null, 50)]
    [InlineData("""{"messages":[],"max_tokens":10}""", 500, 10)]
    [InlineData("""{"messages":[]}""", 500, 500)]
    [InlineData("""{"messages":[]}""", null, 0)]
    [InlineData("""{"messages":[],"max_tokens":10,"n":3}""", null, 30)]
    public void Estimate_Completion_FromTheRequestOrTheDefault(string json, int? defaultMaxTokens, int expected)
    {
        var estimate = TokenEstimator.Estimate(Body(json), defaultMaxTokens);

        Assert.Equal(expected, estimate.CompletionTokens);
        Assert.Equal(3 + expected, estimate.Total);
    }
}
