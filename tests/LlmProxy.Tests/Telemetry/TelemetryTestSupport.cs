using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Routing;
using LlmProxy.Telemetry;
using LlmProxy.Tenancy;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OpenTelemetry.Metrics;
using Microsoft.Extensions.Logging;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

/// <summary>
/// A service provider with the telemetry registrations, a private meter factory and captured logs, and OpenTelemetry's
/// Prometheus exporter answering scrapes in memory (the same middleware <c>/metrics</c> runs).
/// </summary>
internal sealed class TelemetryServices : IDisposable
{
    private readonly ServiceProvider _provider;
    private readonly RequestDelegate _scrape;

    public TelemetryServices(IDictionary<string, string?>? settings = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings ?? new Dictionary<string, string?>()).Build();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(Logs));
        services.AddLlmProxyTelemetry(configuration);
        _provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
        // What a host does when it starts: the meter provider is built and the IMeterFactory subscriptions start.
        MeterProvider = _provider.GetRequiredService<MeterProvider>();
        _provider.GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate();
        Metrics = _provider.GetRequiredService<GatewayMetrics>();
        var app = new ApplicationBuilder(_provider);
        app.UseOpenTelemetryPrometheusScrapingEndpoint(MeterProvider, predicate: _ => true, path: null, configureBranchedPipeline: null, optionsName: null);
        _scrape = app.Build();
    }

    public CapturingLoggerProvider Logs { get; } = new();
    public MeterProvider MeterProvider { get; }
    public GatewayMetrics Metrics { get; }
    public IServiceProvider Services => _provider;
    public System.Diagnostics.Metrics.IMeterFactory MeterFactory => _provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();

    /// <summary>The text of one scrape, as Prometheus 0.0.4 text (what the exporter answers without an Accept header).</summary>
    public string ScrapeText()
    {
        var context = new DefaultHttpContext { RequestServices = _provider };
        context.Request.Method = "GET";
        context.Request.Path = "/metrics";
        using var body = new MemoryStream();
        context.Response.Body = body;
        _scrape(context).GetAwaiter().GetResult();
        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
        return System.Text.Encoding.UTF8.GetString(body.ToArray());
    }

    public Scrape Scrape() => Telemetry.Scrape.Parse(ScrapeText());

    public void Dispose() => _provider.Dispose();
}

/// <summary>A parsed scrape: metadata lines and samples keyed by <c>name{labels}</c> exactly as written.</summary>
internal sealed class Scrape
{
    private Scrape(string text, Dictionary<string, string> samples, Dictionary<string, string> types, Dictionary<string, string> help, List<string> sampleKeys)
    {
        Text = text;
        Samples = samples;
        Types = types;
        Help = help;
        SampleKeys = sampleKeys;
    }

    public string Text { get; }
    public IReadOnlyDictionary<string, string> Samples { get; }
    public IReadOnlyDictionary<string, string> Types { get; }
    public IReadOnlyDictionary<string, string> Help { get; }

    /// <summary>Sample keys in the order written, duplicates included.</summary>
    public IReadOnlyList<string> SampleKeys { get; }

    public static Scrape Parse(string text)
    {
        var samples = new Dictionary<string, string>(StringComparer.Ordinal);
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var help = new Dictionary<string, string>(StringComparer.Ordinal);
        var keys = new List<string>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line["# TYPE ".Length..].Split(' ');
                Assert.True(types.TryAdd(parts[0], parts[1]), $"TYPE of {parts[0]} written twice");
                continue;
            }
            if (line.StartsWith("# EOF", StringComparison.Ordinal) || line.StartsWith("# UNIT ", StringComparison.Ordinal))
            {
                continue;
            }
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var rest = line["# HELP ".Length..];
                var space = rest.IndexOf(' ');
                help[rest[..space]] = rest[(space + 1)..];
                continue;
            }
            var lastSpace = line.LastIndexOf(' ');
            var key = line[..lastSpace];
            if (key.EndsWith("{}", StringComparison.Ordinal))
            {
                key = key[..^2]; // the exporter writes "name{}" for a series without labels
            }
            keys.Add(key);
            samples[key] = line[(lastSpace + 1)..];
        }
        return new Scrape(text, samples, types, help, keys);
    }

    public double Value(string series)
    {
        Assert.True(Samples.TryGetValue(series, out var text), $"No sample {series} in scrape:\n{Text}");
        return text switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(text!, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
    }

    public bool Has(string series) => Samples.ContainsKey(series);

    /// <summary>Series of a family (its name, or name_bucket/_sum/_count for histograms).</summary>
    public IEnumerable<string> SeriesOf(string sampleName) =>
        SampleKeys.Where(k => k == sampleName || k.StartsWith(sampleName + "{", StringComparison.Ordinal));
}

internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, EventId EventId, string Message)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((category, logLevel, eventId, formatter(state, exception)));
    }
}

/// <summary>Deployments, routes and chat contexts built without configuration files.</summary>
internal static class TestChats
{
    /// <param name="genAiProvider">What the provider declares as its <c>gen_ai.provider.name</c>; its name when null.</param>
    public static Deployment Deployment(string id, string model, string provider = "openai", string? genAiProvider = null) =>
        new(id, model, new FakeProvider(provider, genAiProvider ?? provider), new DeploymentOptions { Provider = provider, BaseUrl = "http://127.0.0.1:1/v1" },
            new Uri("http://127.0.0.1:1/v1"), new NoAuthenticator(), new HttpMessageInvoker(new SocketsHttpHandler()));

    public static ChatContext Chat(string tenant, Deployment deployment, bool stream, HttpContext? http = null)
    {
        var body = new JsonObject { ["model"] = deployment.ModelName, ["messages"] = new JsonArray() };
        var request = new ChatRequest(body, deployment.ModelName, stream, includeUsage: false, new JsonArray());
        var route = new ModelRoute(deployment.ModelName, [deployment], new RetryBudgetOptions());
        return new ChatContext(http ?? new DefaultHttpContext(), new TenantIdentity(new Tenant(tenant, null), "key-1"), request, route);
    }

    private sealed class FakeProvider(string name, string genAiProviderName) : IChatProvider
    {
        public string Name { get; } = name;
        public string GenAiProviderName { get; } = genAiProviderName;
        public void Validate(string path, DeploymentOptions options, ICollection<string> errors) { }
        public Uri GetBaseUri(DeploymentOptions options) => new(options.BaseUrl!);
        public IUpstreamAuthenticator CreateAuthenticator(string deploymentId, DeploymentOptions options) => new NoAuthenticator();
        public IChatTranslator CreateTranslator(ChatRequest request, Deployment deployment) => throw new NotSupportedException();
    }

    private sealed class NoAuthenticator : IUpstreamAuthenticator
    {
        public string? UnavailableReason => null;
        public ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
