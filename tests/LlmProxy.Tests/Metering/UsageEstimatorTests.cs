using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Metering;
using LlmProxy.OpenAi;

namespace LlmProxy.Tests.Metering;

public sealed class UsageEstimatorTests
{
    [Theory]
    [InlineData("", 0)]
    [InlineData("a", 1)]
    [InlineData("abcd", 1)]
    [InlineData("abcde", 2)]
    [InlineData("hello world!!", 4)]
    public void EstimateText_FourCharactersPerToken_RoundsUp(string text, int expected)
    {
        Assert.Equal(expected, UsageEstimator.EstimateText(text));
    }

    [Fact]
    public void EstimatePrompt_SameAsTheRateLimiterReservesWith()
    {
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(
            """{"model":"m","messages":[{"role":"system","content":"abcd"},{"role":"user","name":"bob","content":"12345678"}],"tools":[{"type":"function","function":{"name":"f"}}]}"""),
            out var request, out _));

        Assert.Equal(LlmProxy.RateLimiting.TokenEstimator.EstimatePrompt(request!.Body), UsageEstimator.EstimatePrompt(request));
    }

    [Fact]
    public void EstimatePrompt_OneShortMessage_FramingPlusText()
    {
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes("""{"model":"m","messages":[{"role":"user","content":"0123456789abcdef"}]}"""), out var request, out _));

        // 3 (reply priming) + 4 (message framing) + 16 characters / 4
        Assert.Equal(11, UsageEstimator.EstimatePrompt(request!));
    }

    [Fact]
    public void AddChunkOutput_KeepsContentRefusalReasoningAndToolArguments()
    {
        var chunk = JsonNode.Parse("""
            {"choices":[
              {"index":0,"delta":{"content":"Hello","reasoning_content":"hmm"}},
              {"index":1,"delta":{"refusal":"no","tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\""}}]}}
            ]}
            """)!.AsObject();
        var output = new OutputText();

        UsageEstimator.AddChunkOutput(chunk.ToChunkBytes(), output);

        Assert.Equal(5 + 3 + 2 + 1 + 4, output.Characters);
    }

    [Fact]
    public void AddChunkOutput_EscapedAndNonAsciiText_CountedAsTheDecodedCharacters()
    {
        var output = new OutputText();

        UsageEstimator.AddChunkOutput("""{"choices":[{"delta":{"content":"h\u00e9\n\"名\""},"index":0}],"model":"m"}"""u8, output);
        UsageEstimator.AddChunkOutput("""{"choices":[{"index":0,"delta":{"content":"""u8, output); // cut short: adds nothing, throws nothing

        Assert.Equal(6, output.Characters);
    }

    [Fact]
    public void AddChunkOutput_RoleOnlyAndUsageChunks_AddNothing()
    {
        var output = new OutputText();

        UsageEstimator.AddChunkOutput(JsonNode.Parse("""{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}""")!.AsObject().ToChunkBytes(), output);
        UsageEstimator.AddChunkOutput(JsonNode.Parse("""{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}""")!.AsObject().ToChunkBytes(), output);

        Assert.Equal(0, output.Characters);
        Assert.Equal(0, output.Tokens(tokenizer: null));
    }

    [Fact]
    public void AddCompletionOutput_WithoutTokenizer_EveryChoiceAtFourCharactersAToken()
    {
        var completion = JsonNode.Parse("""{"choices":[{"message":{"role":"assistant","content":"12345678"}},{"message":{"role":"assistant","content":"abcd"}}]}""")!.AsObject();
        var output = new OutputText();

        UsageEstimator.AddCompletionOutput(completion, output);

        Assert.Equal(3, output.Tokens(tokenizer: null));
    }

    [Fact]
    public void Tokens_OutputLongerThanKept_CountsTheKeptPartAndScalesByLength()
    {
        var tokenizer = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt-4o");
        var sentence = "The gateway counts what it kept and scales the rest by length. ";
        var output = new OutputText();
        var text = new StringBuilder();
        while (text.Length < OutputText.KeptCharacters * 3)
        {
            output.Add(sentence);
            text.Append(sentence);
        }

        var exact = tokenizer.CountTokens(text.ToString());

        Assert.Equal(text.Length, output.Characters);
        Assert.InRange(output.Tokens(tokenizer), exact * 0.99, exact * 1.01);
    }
}
