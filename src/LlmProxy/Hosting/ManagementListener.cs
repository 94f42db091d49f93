using System.Globalization;
using LlmProxy.Configuration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Hosting;

/// <summary>
/// The <c>LlmProxy:Management</c> configuration section: the listener that serves the operator's endpoints (Prometheus
/// metrics, detailed readiness, the admin API). Read once at startup; changing it needs a restart.
/// </summary>
public sealed class ManagementOptions
{
    public const string SectionName = "LlmProxy:Management";

    /// <summary>
    /// Serve the management endpoints only to connections accepted on this local port; on every other port they do not
    /// exist (404 <c>unknown_url</c>, like any unknown path). The check reads the connection, not the Host header, so a
    /// client cannot talk its way past it. The gateway must also listen on the port: add it to <c>Urls</c> (e.g.
    /// <c>http://0.0.0.0:8080;http://0.0.0.0:9090</c>) or to the Kestrel endpoints. The default is none: every endpoint
    /// is served on every port the gateway listens on (the quick start); the container image's defaults set 9090.
    /// </summary>
    public int? Port { get; set; }
}

internal sealed class ManagementOptionsValidator(IConfiguration configuration) : IValidateOptions<ManagementOptions>
{
    public ValidateOptionsResult Validate(string? name, ManagementOptions options)
    {
        if (options.Port is not { } port)
        {
            return ValidateOptionsResult.Success;
        }
        var errors = new List<string>();
        if (port is < 1 or > 65535)
        {
            errors.Add($"{ManagementOptions.SectionName}:Port must be between 1 and 65535.");
        }
        // LlmProxy:Metrics:Port keeps its meaning (only /metrics on that port); with both set, /metrics must be
        // reachable on one port at least. Read as text: the metrics options report their own conversion errors.
        if (int.TryParse(configuration["LlmProxy:Metrics:Port"], NumberStyles.None, CultureInfo.InvariantCulture, out var metricsPort)
            && metricsPort != port)
        {
            errors.Add($"LlmProxy:Metrics:Port ({metricsPort}) differs from {ManagementOptions.SectionName}:Port ({port}), so /metrics would be "
                + $"served on neither: remove LlmProxy:Metrics:Port (the management port serves /metrics) or make them equal.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Marks an endpoint as a management endpoint: served only on <see cref="ManagementOptions.Port"/> when it is set.</summary>
public sealed class ManagementListenerMetadata
{
    public static readonly ManagementListenerMetadata Instance = new();

    private ManagementListenerMetadata()
    {
    }
}

public static class ManagementListenerExtensions
{
    /// <summary>
    /// Serves the endpoints only on the management listener (<c>LlmProxy:Management:Port</c>) when one is configured; on
    /// other ports they answer 404 as if they did not exist. Without a management port this changes nothing.
    /// </summary>
    public static TBuilder RequireManagementListener<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.WithMetadata(ManagementListenerMetadata.Instance);
    }

    /// <summary>Registers the management listener's options and routing policy, and the listener-wide security settings.</summary>
    internal static IServiceCollection AddLlmProxyListeners(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ManagementOptions>().Bind(configuration.GetSection(ManagementOptions.SectionName));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ManagementOptions>, ManagementOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ManagementListenerMatcherPolicy>());
        // No "Server: Kestrel" on any response, Kestrel's own error answers included.
        services.Configure<KestrelServerOptions>(kestrel => kestrel.AddServerHeader = false);
        return services;
    }

    /// <summary>
    /// Validates the management options (an invalid value stops startup with a <see cref="GatewayConfigurationException"/>),
    /// warns once started if nothing listens on the management port, and adds the security headers to every response.
    /// Call it first, so that every response, errors included, gets the headers.
    /// </summary>
    internal static WebApplication UseLlmProxyListeners(this WebApplication app)
    {
        ManagementOptions options;
        try
        {
            options = app.Services.GetRequiredService<IOptions<ManagementOptions>>().Value;
        }
        catch (OptionsValidationException ex)
        {
            throw new GatewayConfigurationException([.. ex.Failures]);
        }
        if (options.Port is { } port)
        {
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ManagementListenerExtensions).FullName!);
            app.Lifetime.ApplicationStarted.Register(() => ManagementListenerLog.Check(app.Services.GetRequiredService<IServer>(), port, logger));
        }
        app.UseMiddleware<SecurityHeadersMiddleware>();
        return app;
    }
}

internal static partial class ManagementListenerLog
{
    public static void Check(IServer server, int port, ILogger logger)
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        if (addresses.Any(address => BindingAddress.Parse(address).Port == port))
        {
            ManagementPort(logger, port);
        }
        else
        {
            NotListening(logger, port, string.Join(", ", addresses));
        }
    }

    [LoggerMessage(EventId = 9101, Level = LogLevel.Information,
        Message = "Management endpoints (metrics, readiness details, admin API) answer only on port {ManagementPort}")]
    private static partial void ManagementPort(ILogger logger, int managementPort);

    [LoggerMessage(EventId = 9102, Level = LogLevel.Warning,
        Message = "LlmProxy:Management:Port is {ManagementPort} but the gateway does not listen on it (it listens on {Addresses}): metrics, "
            + "readiness details and the admin API are unreachable. Add the port to Urls or to the Kestrel endpoints")]
    private static partial void NotListening(ILogger logger, int managementPort, string addresses);
}

/// <summary>
/// Routes a request to a management endpoint only when its connection was accepted on the management port. A node of the
/// routing tree, like host matching, but keyed on <see cref="ConnectionInfo.LocalPort"/> rather than on the Host header,
/// which the client writes. It runs before HTTP method matching, so a management path on another port is a plain 404
/// (not a 405 that would reveal the path).
/// </summary>
internal sealed class ManagementListenerMatcherPolicy(IOptions<ManagementOptions> options) : MatcherPolicy, INodeBuilderPolicy
{
    private readonly int? _port = options.Value.Port;

    // HttpMethodMatcherPolicy has -1000 and HostMatcherPolicy -100: the lower runs first.
    public override int Order => -2000;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
        _port is not null && endpoints.Any(IsManagement);

    public IReadOnlyList<PolicyNodeEdge> GetEdges(IReadOnlyList<Endpoint> endpoints) =>
    [
        new PolicyNodeEdge(Listener.Management, endpoints),
        new PolicyNodeEdge(Listener.Other, endpoints.Where(e => !IsManagement(e)).ToArray()),
    ];

    public PolicyJumpTable BuildJumpTable(int exitDestination, IReadOnlyList<PolicyJumpTableEdge> edges)
    {
        int management = exitDestination, other = exitDestination;
        foreach (var edge in edges)
        {
            if (edge.State is Listener.Management)
            {
                management = edge.Destination;
            }
            else
            {
                other = edge.Destination;
            }
        }
        return new PortJumpTable(_port!.Value, management, other);
    }

    private static bool IsManagement(Endpoint endpoint) => endpoint.Metadata.GetMetadata<ManagementListenerMetadata>() is not null;

    private enum Listener
    {
        Management,
        Other,
    }

    private sealed class PortJumpTable(int port, int management, int other) : PolicyJumpTable
    {
        public override int GetDestination(HttpContext httpContext) =>
            httpContext.Connection.LocalPort == port ? management : other;
    }
}
