using LlmProxy.Configuration;
using Microsoft.Extensions.Primitives;

namespace LlmProxy.Tests.Configuration;

public sealed class LastGoodJsonConfigurationSourceTests : IDisposable
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(15);
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("llmproxy-lastgood-");

    public void Dispose() => _directory.Delete(recursive: true);

    private string FilePath => Path.Combine(_directory.FullName, "llmproxy.json");

    private (IConfigurationRoot Root, Func<Task> LoadFailed) Build()
    {
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new LastGoodJsonConfigurationSource
        {
            Path = FilePath,
            Optional = false,
            WatchForChanges = true,
            ReloadDelay = 0,
            OnLoadException = _ => failed.TrySetResult(),
        };
        source.ResolveFileProvider();
        var root = new ConfigurationBuilder().Add(source).Build();
        return (root, () => failed.Task.WaitAsync(Within));
    }

    private static Task NextReloadAsync(IConfiguration configuration)
    {
        var reloaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        configuration.GetReloadToken().RegisterChangeCallback(_ => reloaded.TrySetResult(), null);
        return reloaded.Task;
    }

    [Fact]
    public async Task WatchedChange_DoesNotParse_KeepsLastGoodValuesAndAnnouncesNothing()
    {
        File.WriteAllText(FilePath, """{ "LlmProxy": { "Tenants": { "alpha": { "Keys": { "k": "h" } } } } }""");
        var (root, loadFailed) = Build();
        var announced = false;
        using var subscription = ChangeToken.OnChange(root.GetReloadToken, () => announced = true);

        File.WriteAllText(FilePath, """{ "LlmProxy": { "Tenants": """);
        await loadFailed();

        Assert.Equal("h", root["LlmProxy:Tenants:alpha:Keys:k"]);
        Assert.False(announced, "a change that does not parse must not be announced: every subscriber would re-read the configuration");
        // A later reload of everything (another file changed, an explicit reload) still sees the last good values.
        Assert.Throws<InvalidDataException>(root.Reload);
        Assert.Equal("h", root["LlmProxy:Tenants:alpha:Keys:k"]);
    }

    [Fact]
    public async Task WatchedChange_FixedAfterAFailure_IsApplied()
    {
        File.WriteAllText(FilePath, """{ "LlmProxy": { "Tenants": { "alpha": { "Keys": { "k": "h" } } } } }""");
        var (root, loadFailed) = Build();
        File.WriteAllText(FilePath, "{ not json");
        await loadFailed();

        var reloaded = NextReloadAsync(root);
        File.WriteAllText(FilePath, """{ "LlmProxy": { "Tenants": { "beta": { "Keys": { "k": "h2" } } } } }""");
        await reloaded.WaitAsync(Within);

        Assert.Equal("h2", root["LlmProxy:Tenants:beta:Keys:k"]);
        Assert.Null(root["LlmProxy:Tenants:alpha:Keys:k"]);
    }

    [Fact]
    public void Load_FileDoesNotParseAtStartup_Throws()
    {
        File.WriteAllText(FilePath, "{");
        var source = new LastGoodJsonConfigurationSource { Path = FilePath, Optional = true };
        source.ResolveFileProvider();

        Assert.Throws<InvalidDataException>(() => new ConfigurationBuilder().Add(source).Build());
    }
}
