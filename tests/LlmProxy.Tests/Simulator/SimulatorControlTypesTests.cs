using LlmProxy.Simulator;
using LlmProxy.Simulator.Hosting;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class SimulatorControlTypesTests
{
    [Fact]
    public void TakeFor_CountedFault_IsTakenExactlyCountTimesUnderConcurrency()
    {
        var faults = new SimulatorFaults();
        faults.Set(SimulatorFault.Status(500), count: 10);

        var taken = 0;
        Parallel.For(0, 100, _ =>
        {
            if (faults.TakeFor(streaming: false) is not null)
            {
                Interlocked.Increment(ref taken);
            }
        });

        Assert.Equal(10, taken);
        Assert.Null(faults.Current);
    }

    [Fact]
    public void TakeFor_MidStreamFault_SkipsNonStreamingRequests()
    {
        var faults = new SimulatorFaults();
        faults.Set(SimulatorFault.MidStreamError(2), count: 1);

        Assert.Null(faults.TakeFor(streaming: false));
        Assert.Equal(SimulatorFaultKind.MidStreamError, faults.TakeFor(streaming: true)?.Kind);
        Assert.Null(faults.TakeFor(streaming: true));
    }

    [Fact]
    public void Set_ReplacesThePreviousFaultAndItsCount()
    {
        var faults = new SimulatorFaults();
        faults.Set(SimulatorFault.Status(500), count: 1);

        faults.Set(SimulatorFault.Hang());

        Assert.Equal(SimulatorFault.Hang(), faults.Current);
        Assert.Null(faults.Remaining);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Set_CountBelowOne_Throws(int count) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new SimulatorFaults().Set(SimulatorFault.Reset(), count));

    [Theory]
    [InlineData(200)]
    [InlineData(399)]
    [InlineData(600)]
    public void Status_CodeOutsideErrorRange_Throws(int statusCode) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SimulatorFault.Status(statusCode));

    [Fact]
    public void MidStreamFaults_NegativeChunkCount_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SimulatorFault.MidStreamAbort(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SimulatorFault.MidStreamError(-1));
    }

    [Fact]
    public void Parse_AllOptions_FillsOptionsAndUrls()
    {
        var commandLine = CommandLine.Parse(["--urls", "http://127.0.0.1:9000;http://127.0.0.1:9001", "--latency-ms", "250", "--chunk-delay-ms=20", "--api-key", "sk-x", "--models", "a, b"]);

        Assert.False(commandLine.ShowHelp);
        Assert.Equal(["http://127.0.0.1:9000", "http://127.0.0.1:9001"], commandLine.Urls);
        Assert.Equal(TimeSpan.FromMilliseconds(250), commandLine.Options.Latency);
        Assert.Equal(TimeSpan.FromMilliseconds(20), commandLine.Options.ChunkDelay);
        Assert.Equal("sk-x", commandLine.Options.ExpectedApiKey);
        Assert.Equal(["a", "b"], commandLine.Options.Models);
    }

    [Fact]
    public void Parse_NoArguments_UsesDefaults()
    {
        var commandLine = CommandLine.Parse([]);

        Assert.Equal([CommandLine.DefaultUrl], commandLine.Urls);
        Assert.Equal(TimeSpan.Zero, commandLine.Options.Latency);
        Assert.Null(commandLine.Options.ExpectedApiKey);
        Assert.Equal(["gpt-4o-mini", "gpt-4o"], commandLine.Options.Models);
    }

    [Theory]
    [InlineData("--latency-ms", "soon")]
    [InlineData("--latency-ms", "-5")]
    [InlineData("--bogus")]
    [InlineData("--api-key")]
    public void Parse_BadArguments_ThrowsFormatException(params string[] args) =>
        Assert.Throws<FormatException>(() => CommandLine.Parse(args));

    [Fact]
    public void Parse_Help_ShowsHelp() => Assert.True(CommandLine.Parse(["--help"]).ShowHelp);
}
