using LlmProxy.Simulator.Authentication;
using LlmProxy.Simulator.Bedrock;
using LlmProxy.Simulator.ChatCompletions;
using LlmProxy.Simulator.Faults;
using LlmProxy.Simulator.Models;
using LlmProxy.Simulator.OpenAi;
using LlmProxy.Simulator.Recording;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LlmProxy.Simulator;

/// <summary>
/// Builds the simulator as a <see cref="WebApplication"/> of its own, so it runs standalone (Program.cs),
/// inside the gateway's process on a configured loopback URL, or inside tests (<see cref="SimulatorServer"/>).
/// </summary>
public static class SimulatorApp
{
    /// <summary>How long stopping waits for requests in flight; hung and streaming requests end as soon as stopping starts anyway.</summary>
    private static readonly TimeSpan s_shutdownTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Builds (does not start) a simulator listening on <paramref name="urls"/>. The host is deliberately empty:
    /// no appsettings.json, no environment variables, no Kestrel configuration section, so that hosting it inside
    /// another app never picks up that app's settings (its Kestrel endpoints above all). Logging has no provider
    /// unless <paramref name="configureLogging"/> adds one. Its <see cref="SimulatorFaults"/> and
    /// <see cref="SimulatorRecorder"/> are in <c>app.Services</c>. <paramref name="controlUrls"/> (each with an explicit port)
    /// are more listeners, which a <see cref="SimulatorFaultKind.Refuse"/> fault leaves open so that it can be cleared over HTTP.
    /// </summary>
    public static WebApplication Build(SimulatorOptions options, string[] urls, Action<ILoggingBuilder>? configureLogging = null, string[]? controlUrls = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(urls);
        if (urls.Length == 0)
        {
            throw new ArgumentException("The simulator needs at least one URL to listen on.", nameof(urls));
        }
        controlUrls ??= [];
        var controlPorts = controlUrls.Select(url => BindingAddress.Parse(url).Port).ToHashSet();
        if (controlPorts.Any(port => port <= 0))
        {
            throw new ArgumentException("Control URLs need an explicit port.", nameof(controlUrls));
        }

        var settings = options.Snapshot();
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(SimulatorApp).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseUrls([.. urls, .. controlUrls]);
        // Kestrel's socket transport, with the switch the refuse fault needs.
        builder.Services.RemoveAll<IConnectionListenerFactory>();
        builder.Services.AddSingleton<IConnectionListenerFactory>(services => new RefusingListenerFactory(
            new SocketTransportFactory(services.GetRequiredService<IOptions<SocketTransportOptions>>(), services.GetRequiredService<ILoggerFactory>()),
            services.GetRequiredService<SimulatorFaults>(), controlPorts));
        builder.Services.AddRoutingCore();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = s_shutdownTimeout);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<SimulatorFaults>();
        builder.Services.AddSingleton(new SimulatorRecorder(settings.RecordedRequestLimit));
        builder.Services.AddSingleton<ChatCompletionsEndpoint>();
        builder.Services.AddBedrock(settings);
        configureLogging?.Invoke(builder.Logging);

        var app = builder.Build();

        // Errors the framework produces without a body (no route: 404, wrong method: 405) get the API's shape too:
        // Bedrock's under /model/, OpenAI's everywhere else.
        app.UseStatusCodePages(statusContext =>
        {
            var http = statusContext.HttpContext;
            if (http.Request.Path.StartsWithSegments(BedrockPaths.Root))
            {
                return (BedrockError.UnknownOperation() with { StatusCode = http.Response.StatusCode }).WriteResponseAsync(http.Response);
            }

            var error = OpenAiError.InvalidUrl(http.Request) with { StatusCode = http.Response.StatusCode };
            return error.WriteResponseAsync(http.Response);
        });
        app.UseMiddleware<RecordingMiddleware>();
        if (settings.ExpectedApiKey is { } apiKey)
        {
            app.UseMiddleware<ApiKeyMiddleware>(apiKey);
        }

        app.UseBedrockSignatures(settings);

        app.MapPost("/v1/chat/completions", context =>
            context.RequestServices.GetRequiredService<ChatCompletionsEndpoint>().HandleAsync(context));
        app.MapModels(settings.Models.ToArray());
        app.MapBedrock();
        app.MapFaultsControl(app.Services.GetRequiredService<SimulatorFaults>(), controlPorts);
        app.MapRequestsControl(app.Services.GetRequiredService<SimulatorRecorder>());
        return app;
    }
}
