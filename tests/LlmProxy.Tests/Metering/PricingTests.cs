using System.Diagnostics.Metrics;
using LlmProxy.Configuration;
using LlmProxy.Metering;
using LlmProxy.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LlmProxy.Tests.Metering;

public sealed class PricingFileTests
{
    private static PriceTable LoadRepositoryFile()
    {
        var path = RepositoryFiles.PathOf("config/pricing.json");
        var table = PricingFile.Load(path, out var errors);
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
        return table!;
    }

    [Fact]
    public void Load_RepositoryPricingFile_EveryEntryValid()
    {
        var table = LoadRepositoryFile();

        Assert.True(table.Entries.Count >= 40);
        Assert.All(table.Entries, entry =>
        {
            Assert.False(string.IsNullOrWhiteSpace(entry.Provider));
            Assert.False(string.IsNullOrWhiteSpace(entry.Model));
            Assert.InRange(entry.InputPerMillion, 0.001m, 200m);
            Assert.InRange(entry.OutputPerMillion, 0.001m, 200m);
            Assert.True(entry.CachedInputPerMillion is null || entry.CachedInputPerMillion <= entry.InputPerMillion, entry.Model);
            Assert.True(entry.OutputPerMillion >= entry.InputPerMillion, $"{entry.Model}: output cheaper than input is a likely typo");
            Assert.InRange(entry.EffectiveDate, new DateOnly(2023, 1, 1), DateOnly.FromDateTime(DateTime.UtcNow));
            Assert.Contains(entry.Provider, new[] { "openai", "bedrock", "google" });
        });
    }

    [Theory]
    // The original design's models.
    [InlineData("openai", "gpt-4", 30, 60)]
    [InlineData("openai", "gpt-3.5-turbo", 0.50, 1.50)]
    [InlineData("bedrock", "anthropic.claude-3-sonnet-20240229-v1:0", 3, 15)]
    [InlineData("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", 0.25, 1.25)]
    [InlineData("google", "gemini-1.5-flash", 0.075, 0.30)]
    // Current ones.
    [InlineData("openai", "gpt-4o", 2.50, 10)]
    [InlineData("openai", "gpt-4o-mini", 0.15, 0.60)]
    [InlineData("openai", "gpt-4.1", 2, 8)]
    [InlineData("openai", "gpt-4.1-mini", 0.40, 1.60)]
    [InlineData("openai", "gpt-4.1-nano", 0.10, 0.40)]
    [InlineData("openai", "o3", 2, 8)]
    [InlineData("openai", "o4-mini", 1.10, 4.40)]
    [InlineData("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", 3, 15)]
    [InlineData("bedrock", "anthropic.claude-3-7-sonnet-20250219-v1:0", 3, 15)]
    [InlineData("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", 3, 15)]
    [InlineData("bedrock", "meta.llama3-1-70b-instruct-v1:0", 0.72, 0.72)]
    [InlineData("bedrock", "amazon.nova-pro-v1:0", 0.80, 3.20)]
    [InlineData("bedrock", "amazon.titan-text-express-v1", 0.20, 0.60)]
    public void Load_RepositoryPricingFile_PricesTheExpectedModels(string provider, string model, double input, double output)
    {
        var price = LoadRepositoryFile().Find(provider, model, null, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

        Assert.NotNull(price);
        Assert.Equal((decimal)input, price.InputPerMillion);
        Assert.Equal((decimal)output, price.OutputPerMillion);
    }

    [Fact]
    public void Parse_InvalidEntries_ReportsEveryProblem()
    {
        const string json = """
            { "currency": "EUR", "prices": [
              { "provider": "openai", "model": "a", "input_per_million": -1, "output_per_million": 2, "effective_date": "2024-01-01" },
              { "provider": "", "model": "b", "output_per_million": 2, "effective_date": "01/02/2024" },
              { "provider": "openai", "model": "c", "input_per_million": 1, "cached_input_per_million": 2, "output_per_million": 2, "effective_date": "2024-01-01" },
              { "provider": "openai", "model": "d", "aliases": ["a"], "input_per_million": 1, "output_per_million": 2, "effective_date": "2024-01-01" },
              { "provider": "openai", "model": "a", "input_per_million": 1, "output_per_million": 2, "effective_date": "2024-01-01" }
            ] }
            """;

        var table = PricingFile.Parse(json, "p.json", out var errors);

        Assert.Null(table);
        Assert.Contains(errors, e => e.Contains("currency 'EUR'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("prices[0]", StringComparison.Ordinal) && e.Contains("input_per_million", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("prices[1]", StringComparison.Ordinal) && e.Contains("'provider' is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("prices[1]", StringComparison.Ordinal) && e.Contains("'input_per_million' is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("prices[1]", StringComparison.Ordinal) && e.Contains("effective_date", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("prices[2]", StringComparison.Ordinal) && e.Contains("above 'input_per_million'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("prices[4]", StringComparison.Ordinal) && e.Contains("already priced", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_MisspeltProperty_IsAnError()
    {
        var table = PricingFile.Parse("""{"prices":[{"provider":"openai","model":"a","input_per_milion":1,"output_per_million":2,"effective_date":"2024-01-01"}]}""", "p.json", out var errors);

        Assert.Null(table);
        Assert.Contains(errors, e => e.Contains("input_per_milion", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_NotJson_ReportsIt()
    {
        Assert.Null(PricingFile.Parse("{ nope", "p.json", out var errors));
        Assert.Single(errors);
    }
}

public sealed class PriceTableTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static PriceTable Table(params ModelPrice[] prices) => new(prices);

    private static ModelPrice Price(string provider, string model, decimal input, string date = "2024-01-01", params string[] aliases) =>
        new(provider, model, aliases, input, input * 2, null, DateOnly.Parse(date, System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void Find_ProviderAndUpstreamModel_WinsOverTheRequestedName()
    {
        var table = Table(Price("openai", "gpt-4o", 2.5m), Price("openai", "my-model", 99m));

        Assert.Equal(2.5m, table.Find("openai", "gpt-4o", "my-model", Now)!.InputPerMillion);
    }

    [Fact]
    public void Find_UpstreamModelAtAnotherProvider_IsUsed()
    {
        // Gemini served through its OpenAI-compatible endpoint: provider "openai", priced under "google".
        var table = Table(Price("google", "gemini-1.5-flash", 0.075m));

        Assert.Equal(0.075m, table.Find("openai", "gemini-1.5-flash", "fast", Now)!.InputPerMillion);
    }

    [Fact]
    public void Find_UnknownUpstream_FallsBackToTheRequestedName()
    {
        var table = Table(Price("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", 0.25m, "2024-03-13", "claude-3-haiku"));

        Assert.Equal(0.25m, table.Find("bedrock", "some-custom-arn", "claude-3-haiku", Now)!.InputPerMillion);
    }

    [Fact]
    public void Find_Alias_MatchesCaseInsensitively()
    {
        var table = Table(Price("bedrock", "anthropic.claude-3-7-sonnet-20250219-v1:0", 3m, "2025-02-24", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"));

        Assert.NotNull(table.Find("bedrock", "US.Anthropic.Claude-3-7-Sonnet-20250219-v1:0", null, Now));
    }

    [Fact]
    public void Find_Unpriced_IsNull()
    {
        Assert.Null(Table(Price("openai", "gpt-4o", 2.5m)).Find("openai", "llama-local", "local", Now));
        Assert.Null(Table().Find(null, null, null, Now));
    }

    [Fact]
    public void Find_SeveralEffectiveDates_UsesTheOneInEffectAtTheTime()
    {
        var table = Table(Price("openai", "o3", 10m, "2025-04-16"), Price("openai", "o3", 2m, "2025-06-10"));

        Assert.Equal(10m, table.Find("openai", "o3", null, new DateTimeOffset(2025, 6, 9, 23, 59, 59, TimeSpan.Zero))!.InputPerMillion);
        Assert.Equal(2m, table.Find("openai", "o3", null, new DateTimeOffset(2025, 6, 10, 0, 0, 0, TimeSpan.Zero))!.InputPerMillion);
        // Before every entry: the earliest applies.
        Assert.Equal(10m, table.Find("openai", "o3", null, new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero))!.InputPerMillion);
    }

    [Fact]
    public void FindByName_ProviderSlashModel_PicksTheProvider()
    {
        var table = Table(Price("openai", "llama-3", 1m), Price("bedrock", "llama-3", 2m));

        Assert.Equal(1m, table.FindByName("llama-3", Now)!.InputPerMillion);
        Assert.Equal(2m, table.FindByName("bedrock/llama-3", Now)!.InputPerMillion);
    }

    [Fact]
    public void Current_OneEntryPerModel_TheLatestInEffect()
    {
        var table = Table(Price("openai", "o3", 10m, "2025-04-16"), Price("openai", "o3", 2m, "2025-06-10"), Price("openai", "a", 1m));

        var current = table.Current(Now);

        Assert.Equal(2, current.Count);
        Assert.Contains(current, p => p is { Model: "o3", InputPerMillion: 2m });
    }
}

public sealed class PriceTableProviderTests
{
    [Fact]
    public void Find_MissingPrice_CountedEveryTimeLoggedOnce()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(Path.Combine(directory.Path, "pricing.json"),
            """{"prices":[{"provider":"openai","model":"gpt-4o","input_per_million":2.5,"output_per_million":10,"effective_date":"2024-10-02"}]}""");
        var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<IMeterFactory>();
        using var collector = new MeasurementCollector(factory, "llmproxy.pricing.missing");
        var logger = new ListLogger<PriceTableProvider>();
        using var provider = new PriceTableProvider(MeteringTestData.Options(o => o.PricingFile = "pricing.json"),
            new TestHostEnvironment(directory.Path), new MeteringMetrics(factory, new LlmProxy.Telemetry.GatewayMetrics(factory)), logger);

        Assert.NotNull(provider.Find("openai", "gpt-4o", "gpt-4o", MeteringTestData.Start));
        Assert.Null(provider.Find("openai", "mystery", "mystery", MeteringTestData.Start));
        Assert.Null(provider.Find("openai", "mystery", "mystery", MeteringTestData.Start));

        Assert.Equal(2, collector.Sum("model", "mystery"));
        Assert.Single(logger.Messages, m => m.Contains("no price for model mystery", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Constructor_InvalidFile_ThrowsWithEveryProblem()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(Path.Combine(directory.Path, "pricing.json"), """{"prices":[{"provider":"openai","model":"a"}]}""");

        var ex = Assert.Throws<GatewayConfigurationException>(() => new PriceTableProvider(
            MeteringTestData.Options(o => o.PricingFile = "pricing.json"), new TestHostEnvironment(directory.Path), MeteringTestData.Metrics(),
            MeteringTestData.Log<PriceTableProvider>()));

        Assert.Equal(3, ex.Problems.Count);
    }

    [Fact]
    public void Constructor_MissingFile_EmptyTable()
    {
        using var directory = new TempDirectory();
        using var provider = new PriceTableProvider(MeteringTestData.Options(o => o.PricingFile = "absent.json"),
            new TestHostEnvironment(directory.Path), MeteringTestData.Metrics(), MeteringTestData.Log<PriceTableProvider>());

        Assert.Empty(provider.Current.Entries);
    }

    [Fact]
    public void Reload_InvalidChange_KeepsThePreviousPrices()
    {
        using var directory = new TempDirectory();
        var path = Path.Combine(directory.Path, "pricing.json");
        File.WriteAllText(path, """{"prices":[{"provider":"openai","model":"a","input_per_million":1,"output_per_million":2,"effective_date":"2024-01-01"}]}""");
        using var provider = new PriceTableProvider(MeteringTestData.Options(o => o.PricingFile = path),
            new TestHostEnvironment(directory.Path), MeteringTestData.Metrics(), MeteringTestData.Log<PriceTableProvider>());

        File.WriteAllText(path, "{ broken");
        provider.Reload();
        Assert.Equal(1m, provider.Current.Entries.Single().InputPerMillion);

        File.WriteAllText(path, """{"prices":[{"provider":"openai","model":"a","input_per_million":3,"output_per_million":4,"effective_date":"2024-01-01"}]}""");
        provider.Reload();
        Assert.Equal(3m, provider.Current.Entries.Single().InputPerMillion);
    }
}

/// <summary>Collects the measurements of one instrument created through one meter factory (tests run in parallel).</summary>
internal sealed class MeasurementCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<(double Value, KeyValuePair<string, object?>[] Tags)> _measurements = [];

    public MeasurementCollector(IMeterFactory factory, string instrument)
    {
        _listener.InstrumentPublished = (i, listener) =>
        {
            if (i.Name == instrument && ReferenceEquals(i.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(i);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => Add(value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, _) => Add(value, tags));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, _) => Add(value, tags));
        _listener.Start();
    }

    private void Add(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        lock (_measurements)
        {
            _measurements.Add((value, tags.ToArray()));
        }
    }

    public void RecordObservable() => _listener.RecordObservableInstruments();

    public double Sum(string? tag = null, string? value = null)
    {
        lock (_measurements)
        {
            return _measurements.Where(m => tag is null || m.Tags.Any(t => t.Key == tag && Equals(t.Value, value))).Sum(m => m.Value);
        }
    }

    public double? Last()
    {
        lock (_measurements)
        {
            return _measurements.Count == 0 ? null : _measurements[^1].Value;
        }
    }

    public void Dispose() => _listener.Dispose();
}

internal sealed class ListLogger<T> : Microsoft.Extensions.Logging.ILogger<T>
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

    public IReadOnlyCollection<string> Messages => _messages;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
        Func<TState, Exception?, string> formatter) => _messages.Enqueue(formatter(state, exception));
}
