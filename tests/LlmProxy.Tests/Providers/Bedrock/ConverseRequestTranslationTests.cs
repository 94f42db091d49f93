using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Testing;
using Xunit;

namespace LlmProxy.Tests.Providers.Bedrock;

public class ConverseRequestTranslationTests
{
    public static TheoryData<string> CaseNames => new(ConverseRequestCases.All.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void TranslateRequest_Fixture_ProducesExpectedConverseBodyOrError(string name)
    {
        var fixture = ConverseRequestCases.All[name];
        var options = BedrockTest.Options(fixture.DropUnsupportedParams
            ? new Dictionary<string, string> { [BedrockSettings.DropUnsupportedParams] = "true" }
            : null);
        var translator = BedrockTest.Translator(fixture.OpenAi, options);

        if (fixture.Converse is { } expected)
        {
            var request = translator.TranslateRequest();
            BedrockTest.JsonEqual(expected, Encoding.UTF8.GetString(request.Body.Span));
            return;
        }

        var ex = Assert.Throws<ChatRequestRejectedException>(() => translator.TranslateRequest());
        Assert.Equal(400, ex.Error.StatusCode);
        Assert.Equal(GatewayErrors.InvalidRequest, ex.Error.Error.Type);
        Assert.Equal(fixture.ErrorParam, ex.Error.Error.Param);
        Assert.Equal(fixture.ErrorCode, ex.Error.Error.Code);
        if (fixture.ErrorContains is { } text)
        {
            Assert.Contains(text, ex.Error.Error.Message);
        }
    }

    [Theory]
    [InlineData("logprobs", "true")]
    [InlineData("top_logprobs", "3")]
    [InlineData("logit_bias", """{"50256":-100}""")]
    [InlineData("presence_penalty", "0.5")]
    [InlineData("frequency_penalty", "-1")]
    [InlineData("seed", "42")]
    [InlineData("response_format", """{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}""")]
    [InlineData("response_format", """{"type":"json_object"}""")]
    [InlineData("audio", """{"voice":"alloy","format":"mp3"}""")]
    [InlineData("modalities", """["text","audio"]""")]
    [InlineData("prediction", """{"type":"content","content":"x"}""")]
    [InlineData("parallel_tool_calls", "false")]
    [InlineData("reasoning_effort", "\"high\"")]
    [InlineData("verbosity", "\"low\"")]
    [InlineData("web_search_options", "{}")]
    [InlineData("functions", """[{"name":"f"}]""")]
    [InlineData("function_call", "\"auto\"")]
    [InlineData("n", "2")]
    [InlineData("top_k", "5")]
    public void TranslateRequest_UnsupportedParameter_Returns400NamingIt(string parameter, string value)
    {
        var translator = BedrockTest.Translator($$"""{"model":"claude","messages":[{"role":"user","content":"Hi"}],"{{parameter}}":{{value}}}""");

        var ex = Assert.Throws<ChatRequestRejectedException>(() => translator.TranslateRequest());

        Assert.Equal(400, ex.Error.StatusCode);
        Assert.Equal(parameter, ex.Error.Error.Param);
        Assert.Equal("unsupported_parameter", ex.Error.Error.Code);
        Assert.Contains(parameter, ex.Error.Error.Message);
        Assert.Contains("claude", ex.Error.Error.Message);
    }

    [Fact]
    public void Rules_EveryParameter_IsNamedInReadme()
    {
        var table = BedrockParametersSection(File.ReadAllText(RepositoryFiles.PathOf("README.md")));

        foreach (var (name, _) in BedrockParameters.Rules)
        {
            Assert.Contains($"`{name}`", table);
        }
    }

    /// <summary>The README's "Parameters" section of "AWS Bedrock": a name mentioned anywhere else does not document it.</summary>
    private static string BedrockParametersSection(string readme)
    {
        var chapter = readme.IndexOf("\n## AWS Bedrock\n", StringComparison.Ordinal);
        Assert.True(chapter >= 0, "README has no '## AWS Bedrock' chapter");
        var start = readme.IndexOf("\n### Parameters\n", chapter, StringComparison.Ordinal);
        var nextChapter = readme.IndexOf("\n## ", chapter + 1, StringComparison.Ordinal);
        Assert.True(start >= 0 && (nextChapter < 0 || start < nextChapter), "README's AWS Bedrock chapter has no '### Parameters' section");
        var end = readme.IndexOf("\n##", start + 1, StringComparison.Ordinal);
        return end < 0 ? readme[start..] : readme[start..end];
    }

    [Fact]
    public void TranslateRequest_NotStreamed_PostsToConverseWithModelIdEscaped()
    {
        var translator = BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""",
            BedrockTest.Options(upstreamModel: "anthropic.claude-3-haiku-20240307-v1:0"));

        var request = translator.TranslateRequest();

        Assert.Equal("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", request.RelativePath);
        Assert.Equal("application/json", request.ContentType);
        Assert.Equal("application/json", request.Accept);
    }

    [Fact]
    public void TranslateRequest_StreamedToInferenceProfileArn_PostsToConverseStreamAcceptingEventStream()
    {
        var translator = BedrockTest.Translator("""{"model":"claude","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}""",
            BedrockTest.Options(upstreamModel: "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0"));

        var request = translator.TranslateRequest();

        Assert.Equal("/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
            request.RelativePath);
        Assert.Equal("application/vnd.amazon.eventstream", request.Accept);
        // Streaming options are the gateway's business, not Bedrock's.
        Assert.Null(JsonNode.Parse(request.Body.Span)!["stream"]);
    }

    [Fact]
    public void TranslateRequest_NoUpstreamModel_UsesClientModelName()
    {
        var translator = BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""", BedrockTest.Options(upstreamModel: null));

        Assert.Equal("/model/claude/converse", translator.TranslateRequest().RelativePath);
    }

    [Fact]
    public void TranslateRequest_CalledTwice_GivesTheSameBody()
    {
        // One translator per attempt, but the client's request object is shared between attempts: it must not be changed.
        var json = ConverseRequestCases.All["parallel tool calls and their results are merged into one user turn"].OpenAi;
        var request = BedrockTest.Request(json);
        var before = request.Body.ToJsonString();
        var deployment = BedrockTest.Deployment();

        var first = new OpenAiBedrockTranslator(request, deployment, TimeProvider.System).TranslateRequest();
        var second = new OpenAiBedrockTranslator(request, deployment, TimeProvider.System).TranslateRequest();

        Assert.Equal(first.Body.ToArray(), second.Body.ToArray());
        Assert.Equal(before, request.Body.ToJsonString());
    }
}
