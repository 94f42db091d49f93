using System.Collections.Concurrent;
using System.Globalization;
using System.Security;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.IntegrationTests.Providers;

/// <summary>
/// A small stand-in for AWS STS that answers <c>AssumeRoleWithWebIdentity</c> (the call EKS / IRSA web identity
/// credentials make) in STS's Query-protocol shape: a form-encoded POST in, XML out, errors as <c>ErrorResponse</c>.
/// It hands out one fixed set of temporary credentials when the web identity token and role are the expected ones.
/// </summary>
internal sealed class FakeStsServer : IAsyncDisposable
{
    public const string AccessKeyId = "ASIAFAKESTSSESSION01";
    public const string SecretAccessKey = "fake-sts-session-secret";
    public const string SessionToken = "IQoJb3JpZ2luX2VjEFAKE-session-token-issued-by-the-fake-sts";

    private const string Namespace = "https://sts.amazonaws.com/doc/2011-06-15/";
    private readonly WebApplication _app;

    private FakeStsServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>The form parameters of every call received.</summary>
    public ConcurrentQueue<IReadOnlyDictionary<string, string>> Calls { get; } = new();

    public static async Task<FakeStsServer> StartAsync(string expectedWebIdentityToken, string expectedRoleArn)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FakeStsServer? server = null;
        app.MapPost("/", async (HttpContext context) =>
        {
            var form = await context.Request.ReadFormAsync();
            var call = form.ToDictionary(p => p.Key, p => p.Value.ToString(), StringComparer.Ordinal);
            server!.Calls.Enqueue(call);
            context.Response.ContentType = "text/xml";
            if (call.GetValueOrDefault("Action") != "AssumeRoleWithWebIdentity")
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync(Error("InvalidAction", "Could not find operation " + call.GetValueOrDefault("Action")));
                return;
            }
            // The SDK sends the token file's content as it is, trailing newline included.
            if (call.GetValueOrDefault("WebIdentityToken")?.Trim() != expectedWebIdentityToken || call.GetValueOrDefault("RoleArn") != expectedRoleArn)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync(Error("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider."));
                return;
            }
            await context.Response.WriteAsync(Success(call.GetValueOrDefault("RoleSessionName") ?? "session", DateTimeOffset.UtcNow.AddHours(1)));
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        server = new FakeStsServer(app, new Uri(address));
        return server;
    }

    private static string Success(string sessionName, DateTimeOffset expiration) => $"""
        <AssumeRoleWithWebIdentityResponse xmlns="{Namespace}">
          <AssumeRoleWithWebIdentityResult>
            <SubjectFromWebIdentityToken>system:serviceaccount:llmproxy:gateway</SubjectFromWebIdentityToken>
            <Audience>sts.amazonaws.com</Audience>
            <AssumedRoleUser>
              <Arn>arn:aws:sts::123456789012:assumed-role/llmproxy-bedrock/{SecurityElement.Escape(sessionName)}</Arn>
              <AssumedRoleId>AROAFAKESTSROLE0000001:{SecurityElement.Escape(sessionName)}</AssumedRoleId>
            </AssumedRoleUser>
            <Credentials>
              <SessionToken>{SessionToken}</SessionToken>
              <SecretAccessKey>{SecretAccessKey}</SecretAccessKey>
              <Expiration>{expiration.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}</Expiration>
              <AccessKeyId>{AccessKeyId}</AccessKeyId>
            </Credentials>
            <Provider>oidc.eks.us-east-1.amazonaws.com/id/FAKE</Provider>
          </AssumeRoleWithWebIdentityResult>
          <ResponseMetadata>
            <RequestId>{Guid.NewGuid()}</RequestId>
          </ResponseMetadata>
        </AssumeRoleWithWebIdentityResponse>
        """;

    private static string Error(string code, string message) => $"""
        <ErrorResponse xmlns="{Namespace}">
          <Error>
            <Type>Sender</Type>
            <Code>{code}</Code>
            <Message>{SecurityElement.Escape(message)}</Message>
          </Error>
          <RequestId>{Guid.NewGuid()}</RequestId>
        </ErrorResponse>
        """;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
