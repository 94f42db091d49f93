using LlmProxy.Hosting;
using LlmProxy.Tenancy;

namespace LlmProxy.Tests.Hosting;

public sealed class HashKeyCommandTests
{
    [Fact]
    public void Run_KeyArgument_PrintsItsSha256()
    {
        var output = new StringWriter();

        var exit = HashKeyCommand.Run(["sk-llmproxy-demo"], new StringReader(""), output, new StringWriter());

        Assert.Equal(0, exit);
        Assert.Equal("c6de1acacd799db7e8a088fc33e5680ac0aea0020af092b2fee8c0ac50b264cf", output.ToString().Trim());
    }

    [Fact]
    public void Run_KeyOnStandardInput_PrintsItsSha256()
    {
        var output = new StringWriter();

        var exit = HashKeyCommand.Run([], new StringReader("sk-llmproxy-demo\n"), output, new StringWriter());

        Assert.Equal(0, exit);
        Assert.Equal(ApiKeyHasher.Hash("sk-llmproxy-demo"), output.ToString().Trim());
    }

    [Fact]
    public void Run_New_PrintsAKeyAndTheHashOfThatKey()
    {
        var output = new StringWriter();

        HashKeyCommand.Run(["--new"], new StringReader(""), output, new StringWriter());

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var key = lines[0]["key:".Length..].Trim();
        var hash = lines[1]["sha256:".Length..].Trim();
        Assert.StartsWith("sk-llmproxy-", key);
        Assert.Equal(ApiKeyHasher.Hash(key), hash);
    }

    [Fact]
    public void Run_NothingToHash_PrintsUsageAndFails()
    {
        var error = new StringWriter();

        var exit = HashKeyCommand.Run([], new StringReader(""), new StringWriter(), error);

        Assert.Equal(2, exit);
        Assert.Contains("usage", error.ToString());
    }
}
