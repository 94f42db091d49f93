using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;

namespace LlmProxy.IntegrationTests.Configuration;

/// <summary>
/// The gateway as a process, configured from a directory laid out the way the kubelet publishes a ConfigMap volume: SIGHUP
/// reloads it, and so does the polling file watcher that the Kubernetes manifests turn on. The kubelet replaces the files
/// by swapping a <c>..data</c> symlink, a change the default (inotify) watcher does not see.
/// </summary>
public sealed class GatewayProcessReloadTests : IAsyncLifetime
{
    private readonly DirectoryInfo _workingDirectory = Directory.CreateTempSubdirectory("llmproxy-process-");
    private SimulatorServer _simulator = null!;
    private ConfigMapDirectory _configMap = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _configMap = new ConfigMapDirectory();
    }

    public async ValueTask DisposeAsync()
    {
        _configMap.Dispose();
        await _simulator.DisposeAsync();
        _workingDirectory.Delete(recursive: true);
    }

    private Dictionary<string, string> Files(string[] tenants, decimal inputPrice) => new()
    {
        ["llmproxy.json"] = JsonSerializer.Serialize(new
        {
            LlmProxy = new
            {
                Tenants = tenants.ToDictionary(t => t, t => new { Keys = new Dictionary<string, string> { [t + "-key"] = ApiKeyHasher.Hash("sk-" + t) } }),
                Models = new Dictionary<string, object>
                {
                    ["chat"] = new { Deployments = new Dictionary<string, object> { ["sim"] = new { Provider = "openai", BaseUrl = new Uri(_simulator.BaseAddress, "v1").ToString() } } },
                },
            },
        }),
        ["pricing.json"] = $$"""
            { "currency": "USD", "prices": [
              { "provider": "openai", "model": "chat", "input_per_million": {{inputPrice}}, "output_per_million": 1, "effective_date": "2024-01-01" } ] }
            """,
    };

    private Dictionary<string, string?> Environment(bool pollingWatcher) => new()
    {
        ["LLMPROXY_CONFIG"] = Path.Combine(_configMap.Root, "llmproxy.json"),
        ["LlmProxy__Metering__PricingFile"] = Path.Combine(_configMap.Root, "pricing.json"),
        ["DOTNET_USE_POLLING_FILE_WATCHER"] = pollingWatcher ? "true" : "false",
    };

    private static async Task<HttpStatusCode> ChatAsync(GatewayProcess gateway, string tenant)
    {
        using var http = gateway.CreateClient("sk-" + tenant);
        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"chat","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        return response.StatusCode;
    }

    private static async Task<decimal> ListedInputPriceAsync(GatewayProcess gateway)
    {
        using var http = gateway.CreateClient("sk-alpha");
        var json = await http.GetStringAsync("/v1/pricing");
        return JsonDocument.Parse(json).RootElement.GetProperty("data")[0].GetProperty("input_per_million").GetDecimal();
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan within, string because)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < within, because);
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Sighup_ReloadsConfigurationAndPrices_TheProcessKeepsRunning()
    {
        _configMap.Publish(Files(["alpha"], inputPrice: 1m));
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName, Environment(pollingWatcher: false));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, "alpha"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(gateway, "beta"));

        _configMap.Publish(Files(["alpha", "beta"], inputPrice: 2m));
        // The inotify watcher is not told: the files it watches are symlinks that did not change.
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(gateway, "beta"));

        gateway.Signal("HUP");

        await gateway.WaitForLineAsync(l => l.Contains("Configuration reload (SIGHUP) applied: 1 model(s), 2 tenant key(s), 1 price(s)", StringComparison.Ordinal),
            TimeSpan.FromSeconds(15));
        Assert.False(gateway.HasExited, "SIGHUP ended the process");
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, "beta"));
        Assert.Equal(2m, await ListedInputPriceAsync(gateway));
    }

    [Fact]
    public async Task ConfigMapUpdate_WithThePollingWatcher_IsAppliedWithoutASignal()
    {
        _configMap.Publish(Files(["alpha"], inputPrice: 1m));
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName, Environment(pollingWatcher: true));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(gateway, "beta"));
        Assert.Equal(1m, await ListedInputPriceAsync(gateway));

        _configMap.Publish(Files(["alpha", "beta"], inputPrice: 2m));

        // The polling watcher looks every 4 seconds.
        await EventuallyAsync(async () => await ChatAsync(gateway, "beta") == HttpStatusCode.OK, TimeSpan.FromSeconds(20), "the new tenant was not applied within 20 s");
        await EventuallyAsync(async () => await ListedInputPriceAsync(gateway) == 2m, TimeSpan.FromSeconds(20), "the new price was not applied within 20 s");
    }

    /// <summary>
    /// A directory published the way the kubelet publishes a ConfigMap volume: the files live in a timestamped directory,
    /// <c>..data</c> links to it, and each visible file links to <c>..data/name</c>. An update writes a new directory and
    /// atomically renames a new <c>..data</c> link over the old one; the visible links never change.
    /// </summary>
    private sealed class ConfigMapDirectory : IDisposable
    {
        private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("llmproxy-configmap-");
        private string? _published;
        private int _version;

        public string Root => _root.FullName;

        public void Publish(IReadOnlyDictionary<string, string> files)
        {
            var version = $"..2026_01_01_00_00_00.{++_version}";
            Directory.CreateDirectory(Path.Combine(Root, version));
            foreach (var (name, content) in files)
            {
                File.WriteAllText(Path.Combine(Root, version, name), content);
            }
            var temporary = Path.Combine(Root, "..data_tmp");
            File.CreateSymbolicLink(temporary, version);
            Rename(temporary, Path.Combine(Root, "..data"));
            foreach (var name in files.Keys)
            {
                var visible = Path.Combine(Root, name);
                if (!File.Exists(visible))
                {
                    File.CreateSymbolicLink(visible, Path.Combine("..data", name));
                }
            }
            if (_published is not null)
            {
                Directory.Delete(Path.Combine(Root, _published), recursive: true);
            }
            _published = version;
        }

        /// <summary>rename(2), which replaces the <c>..data</c> link itself rather than following it.</summary>
        private static void Rename(string from, string to)
        {
            using var mv = Process.Start(new ProcessStartInfo("mv", ["-T", "-f", from, to]) { RedirectStandardError = true })!;
            mv.WaitForExit();
            Assert.True(mv.ExitCode == 0, mv.StandardError.ReadToEnd());
        }

        public void Dispose() => _root.Delete(recursive: true);
    }
}
