using System.Globalization;
using System.Security;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;
using WireMock.Types;

namespace LlmProxy.IntegrationTests.Providers;

/// <summary>
/// A small stand-in for AWS STS that answers <c>AssumeRoleWithWebIdentity</c> (the call EKS / IRSA web identity
/// credentials make) in STS's Query-protocol shape: a form-encoded POST in, XML out, errors as <c>ErrorResponse</c>.
/// It hands out one fixed set of temporary credentials when the web identity token and role are the expected ones.
/// </summary>
internal sealed class FakeStsServer : IDisposable
{
    public const string AccessKeyId = "ASIAFAKESTSSESSION01";
    public const string SecretAccessKey = "fake-sts-session-secret";
    public const string SessionToken = "IQoJb3JpZ2luX2VjEFAKE-session-token-issued-by-the-fake-sts";

    private const string Namespace = "https://sts.amazonaws.com/doc/2011-06-15/";
    private readonly WireMockServer _server;

    private FakeStsServer(WireMockServer server) => _server = server;

    public Uri BaseAddress => new(_server.Url!);

    /// <summary>The form parameters of every call received.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Calls =>
        [.. _server.LogEntries.Select(e => e.RequestMessage!.BodyData!.BodyAsFormUrlEncoded!.ToDictionary(p => p.Key, p => string.Join(",", p.Value)))];

    public static FakeStsServer Start(string expectedWebIdentityToken, string expectedRoleArn)
    {
        var server = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
        // The SDK sends the token file's content as it is, trailing newline included.
        server.Given(Request.Create().UsingPost().WithPath("/").WithBody((IDictionary<string, WireMockList<string>>? form) =>
                Field(form, "Action") == "AssumeRoleWithWebIdentity" && Field(form, "RoleArn") == expectedRoleArn
                && Field(form, "WebIdentityToken")?.Trim() == expectedWebIdentityToken))
            .AtPriority(1)
            .RespondWith(Response.Create().WithHeader("Content-Type", "text/xml").WithBody(Success(DateTimeOffset.UtcNow.AddHours(1))));
        server.Given(Request.Create().UsingPost().WithPath("/")).AtPriority(2)
            .RespondWith(Response.Create().WithStatusCode(400).WithHeader("Content-Type", "text/xml")
                .WithBody(Error("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider.")));
        return new FakeStsServer(server);
    }

    private static string? Field(IDictionary<string, WireMockList<string>>? form, string name) =>
        form is not null && form.TryGetValue(name, out var values) ? string.Join(",", values) : null;

    private static string Success(DateTimeOffset expiration) => $"""
        <AssumeRoleWithWebIdentityResponse xmlns="{Namespace}">
          <AssumeRoleWithWebIdentityResult>
            <SubjectFromWebIdentityToken>system:serviceaccount:llmproxy:gateway</SubjectFromWebIdentityToken>
            <Audience>sts.amazonaws.com</Audience>
            <AssumedRoleUser>
              <Arn>arn:aws:sts::123456789012:assumed-role/llmproxy-bedrock/llmproxy-test</Arn>
              <AssumedRoleId>AROAFAKESTSROLE0000001:llmproxy-test</AssumedRoleId>
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

    public void Dispose() => _server.Stop();
}
