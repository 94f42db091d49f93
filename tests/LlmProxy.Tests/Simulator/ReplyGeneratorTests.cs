using System.Text.Json;
using LlmProxy.Simulator.ChatCompletions;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class ReplyGeneratorTests
{
    [Theory]
    [InlineData("", 0)]
    [InlineData("   ", 0)]
    [InlineData("one", 1)]
    [InlineData("  one\ttwo\n\nthree  ", 3)]
    [InlineData("{\"a\":1,\"b\":\"x\"}", 1)]
    public void Count_CountsWhitespaceSeparatedWords(string text, int expected) =>
        Assert.Equal(expected, SimulatedTokens.Count(text));

    [Fact]
    public void Split_TokensKeepLeadingWhitespaceAndConcatenateBack()
    {
        var tokens = SimulatedTokens.Split("Hello  big\nworld ");

        Assert.Equal(["Hello", "  big", "\nworld"], tokens);
        Assert.Equal("Hello  big\nworld", string.Concat(tokens));
    }

    [Fact]
    public void Generate_NoUserMessage_RepliesWithFixedText()
    {
        var reply = ReplyGenerator.Generate(Request([new ChatMessage("system", "only a system prompt")]));

        Assert.Equal(ReplyGenerator.EmptyPromptReply, reply.Choices[0].Content);
        Assert.Equal(4 + SimulatedTokens.PerMessageOverhead, reply.PromptTokens);
    }

    [Fact]
    public void Generate_UsesLastUserMessage()
    {
        var reply = ReplyGenerator.Generate(Request([new ChatMessage("user", "first"), new ChatMessage("assistant", "ok"), new ChatMessage("user", " second ")]));

        Assert.Equal("Simulated reply to: second", reply.Choices[0].Content);
    }

    [Fact]
    public void Generate_StopSequenceAtStart_GivesEmptyContentAndZeroTokens()
    {
        var reply = ReplyGenerator.Generate(Request([new ChatMessage("user", "x")]) with { StopSequences = ["Simulated"] });

        Assert.Equal("", reply.Choices[0].Content);
        Assert.Equal("stop", reply.Choices[0].FinishReason);
        Assert.Equal(0, reply.CompletionTokens);
    }

    [Fact]
    public void Generate_EarliestOfSeveralStopSequencesWins()
    {
        var reply = ReplyGenerator.Generate(Request([new ChatMessage("user", "a-b+c")]) with { StopSequences = ["+", "-"] });

        Assert.Equal("Simulated reply to: a", reply.Choices[0].Content);
    }

    [Fact]
    public void Generate_MaxTokensNotReached_FinishReasonStop()
    {
        var reply = ReplyGenerator.Generate(Request([new ChatMessage("user", "x")]) with { MaxTokens = 100 });

        Assert.Equal("stop", reply.Choices[0].FinishReason);
        Assert.Equal(4, reply.CompletionTokens);
    }

    [Fact]
    public void Generate_NamedTool_CallsOnlyThatToolEvenWhenParallelIsAsked()
    {
        var request = Request([new ChatMessage("user", "parallel")]) with
        {
            Tools = [new ToolDefinition("a", null), new ToolDefinition("b", null)],
            ToolChoice = ToolChoiceMode.Named,
            NamedTool = "b",
        };

        var call = Assert.Single(ReplyGenerator.Generate(request).Choices[0].ToolCalls);

        Assert.Equal("b", call.Name);
        Assert.Equal("{}", call.Arguments);
    }

    [Fact]
    public void Generate_WordParallelInsideAnotherWord_DoesNotCallEveryTool()
    {
        var request = Request([new ChatMessage("user", "unparalleled parallelism")]) with
        {
            Tools = [new ToolDefinition("a", null), new ToolDefinition("b", null)],
        };

        Assert.Single(ReplyGenerator.Generate(request).Choices[0].ToolCalls);
    }

    [Fact]
    public void FromSchema_FillsEachTypeWithASampleValue()
    {
        using var schema = JsonDocument.Parse("""
            {"type":"object","properties":{
              "s":{"type":"string"},"i":{"type":"integer"},"n":{"type":"number"},"b":{"type":"boolean"},
              "e":{"type":"string","enum":["x","y"]},"c":{"const":42},
              "nullable":{"type":["null","string"]},
              "list":{"type":"array","items":{"type":"integer"}},
              "nested":{"type":"object","properties":{"deep":{"anyOf":[{"type":"null"},{"type":"boolean"}]}}},
              "untyped":{}}}
            """);

        var arguments = ToolArguments.FromSchema(schema.RootElement);

        Assert.Equal(
            """{"s":"sample","i":1,"n":1,"b":true,"e":"x","c":42,"nullable":"sample","list":[1],"nested":{"deep":true},"untyped":"sample"}""",
            arguments);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("""{"type":"string"}""")]
    [InlineData("""{"type":"object"}""")]
    public void FromSchema_NoUsableObjectSchema_GivesEmptyObject(string? schemaJson)
    {
        using var schema = schemaJson is null ? null : JsonDocument.Parse(schemaJson);

        Assert.Equal("{}", ToolArguments.FromSchema(schema?.RootElement));
    }

    [Fact]
    public void FromSchema_SelfReferencingDepth_IsBounded()
    {
        var json = "{\"type\":\"object\",\"properties\":{\"child\":" + string.Concat(Enumerable.Repeat("{\"type\":\"object\",\"properties\":{\"child\":", 20))
            + "{\"type\":\"string\"}" + new string('}', 20 * 2) + "}}";
        using var schema = JsonDocument.Parse(json);

        var arguments = ToolArguments.FromSchema(schema.RootElement);

        using var parsed = JsonDocument.Parse(arguments);
        Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("""{"city":"sample","days":1}""")]
    [InlineData("{\"emoji\":\"\U0001F600\U0001F600\U0001F600\U0001F600\"}")]
    public void SplitArguments_FragmentsConcatenateBackAndNeverSplitASurrogatePair(string arguments)
    {
        var fragments = ChatCompletionChunks.SplitArguments(arguments);

        Assert.Equal(arguments, string.Concat(fragments));
        Assert.All(fragments, f => Assert.False(char.IsHighSurrogate(f[^1])));
        Assert.All(fragments, f => Assert.InRange(f.Length, 1, ChatCompletionChunks.ArgumentFragmentLength + 1));
    }

    private static ChatCompletionRequest Request(IReadOnlyList<ChatMessage> messages) =>
        new() { Model = "m", Messages = messages };
}
