using System.Diagnostics.Metrics;
using System.Net;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using Microsoft.Extensions.DependencyInjection.Extensions;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>Spend budgets fed by a fake cost source, on a fake clock that crosses UTC day and month boundaries.</summary>
public sealed class BudgetTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 30, 22, 0, 0, TimeSpan.Zero));
    private SimulatorServer _simulator = null!;

    public async ValueTask InitializeAsync() => _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async ValueTask DisposeAsync() => await _simulator.DisposeAsync();

    [Theory]
    [InlineData(RateLimitStores.Local)]
    [InlineData(RateLimitStores.Redis)]
    public async Task Costs_TripTheDailyThenTheMonthlyBudget_EachResetsAtItsUtcBoundary(string store)
    {
        var completions = new CompletionSignal();
        var settings = Settings(_simulator)
            .Limit("Tenants:acme:DailyBudgetUsd", "1.00")
            .Limit("Tenants:acme:MonthlyBudgetUsd", "2.00");
        if (store == RateLimitStores.Redis)
        {
            settings.RedisStore(RedisTestServer.SharedConfiguration(), RedisTestServer.NewKeyPrefix());
        }
        await using var gateway = await GatewayHost.StartAsync(settings, services =>
        {
            services.AddSingleton<TimeProvider>(_time);
            services.AddLlmProxyRateLimiting();
            services.Replace(ServiceDescriptor.Singleton<IRequestCostSource>(new FixedCostSource(0.40m)));
            services.AddSingleton<IChatRequestCompletionListener>(completions);
        });
        using var http = gateway.CreateClient(AcmeKey);
        using var gauge = new BudgetGauge(gateway.Services.GetRequiredService<IMeterFactory>());

        async Task<HttpResponseMessage> SendAndWaitAsync()
        {
            var response = await SendAsync(http);
            await completions.NextAsync(); // the spend is recorded before this
            return response;
        }

        // 30 Jan: 0.40 + 0.40 + 0.40 -> 1.20 spent; the daily budget of 1.00 is gone after the third.
        for (var i = 0; i < 3; i++)
        {
            using var ok = await SendAndWaitAsync();
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var daily = await SendAndWaitAsync())
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, daily.StatusCode);
            Assert.Equal("7200", daily.Header("Retry-After")); // until 31 Jan 00:00 UTC
            var error = await daily.ErrorAsync();
            Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
            Assert.Equal("insufficient_quota", error.GetProperty("type").GetString());
            Assert.Equal("The daily budget of 1.00 USD for tenant 'acme' is used up (1.2 USD spent today, UTC). It resets in 2h0m0s.",
                error.GetProperty("message").GetString());
        }
        // The gauge shows the spend as this replica last saw it: here, as the refused request's check read it.
        Assert.Equal(0.0, gauge.Read("daily"));
        Assert.Equal(0.8, gauge.Read("monthly"), 6);

        // 31 Jan: a new day, but the month has 1.20 spent: two more requests reach 2.00.
        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(1.0, gauge.Read("daily"), 6);
        Assert.Equal(0.8, gauge.Read("monthly"), 6);
        for (var i = 0; i < 2; i++)
        {
            using var ok = await SendAndWaitAsync();
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var monthly = await SendAndWaitAsync())
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, monthly.StatusCode);
            Assert.Equal("86400", monthly.Header("Retry-After")); // until 1 Feb 00:00 UTC
            Assert.Contains("monthly budget of 2.00 USD", (await monthly.ErrorAsync()).GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // 1 Feb: both budgets are whole again.
        _time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(1.0, gauge.Read("daily"), 6);
        Assert.Equal(2.0, gauge.Read("monthly"), 6);
        using (var ok = await SendAndWaitAsync())
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        Assert.Equal(6, _simulator.Requests.Count);
        Assert.Equal(2, gauge.Rejections);
    }

    [Fact]
    public async Task NoCostSource_BudgetsNeverFill()
    {
        var settings = Settings(_simulator).Limit("Tenants:acme:DailyBudgetUsd", "0.01");
        await using var gateway = await GatewayHost.StartAsync(settings, services => services.AddLlmProxyRateLimiting());
        using var http = gateway.CreateClient(AcmeKey);

        for (var i = 0; i < 5; i++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    /// <summary>Reads the gateway's <c>llmproxy.ratelimit.budget.remaining.usd</c> gauge and counts its rejections.</summary>
    private sealed class BudgetGauge : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, double> _values = new(StringComparer.Ordinal);
        private int _rejections;

        public BudgetGauge(IMeterFactory factory)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name is "llmproxy.ratelimit.budget.remaining.usd" or "llmproxy.ratelimit.rejections")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
            {
                var t = tags.ToArray().ToDictionary(p => p.Key, p => p.Value);
                if ((string?)t["tenant"] == "acme")
                {
                    _values[(string)t["period"]!] = value;
                }
            });
            _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
            {
                var t = tags.ToArray().ToDictionary(p => p.Key, p => p.Value);
                if ((string?)t["limit"] is "budget_daily" or "budget_monthly")
                {
                    Interlocked.Increment(ref _rejections);
                }
            });
            _listener.Start();
        }

        public int Rejections => Volatile.Read(ref _rejections);

        public double Read(string period)
        {
            _values.Clear();
            _listener.RecordObservableInstruments();
            return _values[period];
        }

        public void Dispose() => _listener.Dispose();
    }
}
