using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// What every response carries (<c>X-Content-Type-Options: nosniff</c>, no <c>Server</c> header), and TLS from a
/// certificate in PEM files (as a Kubernetes TLS secret mounts them) with <c>Strict-Transport-Security</c> on HTTPS only.
/// </summary>
public sealed class SecurityHeadersTests
{
    private const string TenantKey = "sk-tenant-headers-0123456789";

    [Fact]
    public async Task EveryResponse_SuccessesAndErrors_NosniffAndNoServerOrHstsOverHttp()
    {
        await using var upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .OpenAi("gpt-test", "sim", upstream.BaseAddress)
            .Set("LlmProxy:MaxRequestBodyBytes", "100"));
        using var http = gateway.CreateClient();
        using var tenant = gateway.CreateClient(TenantKey);

        // The simulator is a Kestrel server that sends its own Server header: the gateway must not pass it on.
        using var upstreamAnswer = await new HttpClient().GetAsync(new Uri(upstream.BaseAddress, "v1/models"));
        Assert.True(upstreamAnswer.Headers.Contains("Server"), "the simulator no longer sends a Server header; this test needs an upstream that does");

        var responses = new List<(string What, HttpResponseMessage Response)>
        {
            ("healthz", await http.GetAsync("/healthz")),
            ("chat", await tenant.PostAsync("/v1/chat/completions", Json("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"""))),
            ("stream", await tenant.PostAsync("/v1/chat/completions", Json("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"""))),
            ("401", await http.GetAsync("/v1/models")),
            ("404", await http.GetAsync("/no/such/path")),
            ("405", await tenant.DeleteAsync("/v1/models")),
            // Too large: the error middleware clears the response before writing the error.
            ("413", await tenant.PostAsync("/v1/chat/completions", Json(new string('x', 500)))),
        };
        try
        {
            Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.Unauthorized, HttpStatusCode.NotFound,
                HttpStatusCode.MethodNotAllowed, HttpStatusCode.RequestEntityTooLarge], responses.Select(r => r.Response.StatusCode));
            foreach (var (what, response) in responses)
            {
                Assert.True(response.Headers.TryGetValues("X-Content-Type-Options", out var nosniff), $"{what}: no X-Content-Type-Options");
                Assert.Equal(["nosniff"], nosniff);
                Assert.False(response.Headers.Contains("Server"), $"{what}: Server header {string.Join(",", response.Headers.Server)}");
                Assert.False(response.Headers.Contains("Strict-Transport-Security"), $"{what}: HSTS over plain HTTP");
            }
        }
        finally
        {
            responses.ForEach(r => r.Response.Dispose());
        }
    }

    [Fact]
    public async Task Https_CertificateFromPemFiles_ServedWithHstsOnHttpsOnly()
    {
        var directory = Directory.CreateTempSubdirectory("llmproxy-tls-");
        try
        {
            using var certificate = SelfSignedCertificate(out var keyPem);
            var certificatePath = Path.Combine(directory.FullName, "tls.crt");
            var keyPath = Path.Combine(directory.FullName, "tls.key");
            await File.WriteAllTextAsync(certificatePath, certificate.ExportCertificatePem());
            await File.WriteAllTextAsync(keyPath, keyPem);

            // The file names of a Kubernetes TLS secret mounted as a volume; an HTTP listener beside it for comparison.
            await using var gateway = await GatewayHost.StartAsync(new GatewaySettings().Tenant("acme", TenantKey)
                .Deployment("gpt-test", "nowhere", "openai", $"http://127.0.0.1:{OpenAiApi.ErrorResponseTests.ClosedPort()}/v1"), configureConfiguration: c =>
                c.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Kestrel:Endpoints:Https:Url"] = "https://127.0.0.1:0",
                    ["Kestrel:Endpoints:Https:Certificate:Path"] = certificatePath,
                    ["Kestrel:Endpoints:Https:Certificate:KeyPath"] = keyPath,
                    ["Kestrel:Endpoints:Http:Url"] = "http://127.0.0.1:0",
                }));
            var addresses = gateway.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
            var https = new Uri(addresses.Single(a => a.StartsWith("https://", StringComparison.Ordinal)));
            var plain = new Uri(addresses.Single(a => a.StartsWith("http://", StringComparison.Ordinal)));
            using var trusting = new HttpClient(TrustingOnly(certificate)) { BaseAddress = https, Timeout = TimeSpan.FromSeconds(30) };
            using var systemTrust = new HttpClient { BaseAddress = https, Timeout = TimeSpan.FromSeconds(30) };
            using var http = new HttpClient { BaseAddress = plain, Timeout = TimeSpan.FromSeconds(30) };

            using var health = await trusting.GetAsync("/healthz");
            using var unauthorized = await trusting.GetAsync("/v1/models");
            using var plainHealth = await http.GetAsync("/healthz");

            // Our self-signed certificate is what the listener presents: a client with the system's roots rejects it.
            await Assert.ThrowsAsync<HttpRequestException>(() => systemTrust.GetAsync("/healthz"));
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
            foreach (var response in new[] { health, unauthorized })
            {
                Assert.Equal(["max-age=31536000"], response.Headers.GetValues("Strict-Transport-Security"));
                Assert.Equal(["nosniff"], response.Headers.GetValues("X-Content-Type-Options"));
                Assert.False(response.Headers.Contains("Server"));
            }
            Assert.Equal(HttpStatusCode.OK, plainHealth.StatusCode);
            Assert.False(plainHealth.Headers.Contains("Strict-Transport-Security"));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static X509Certificate2 SelfSignedCertificate(out string keyPem)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=llmproxy.test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        keyPem = key.ExportPkcs8PrivateKeyPem();
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }

    /// <summary>A handler that trusts <paramref name="root"/> and nothing else (not the machine's roots).</summary>
    private static SocketsHttpHandler TrustingOnly(X509Certificate2 root) => new()
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                CustomTrustStore = { root },
                RevocationMode = X509RevocationMode.NoCheck,
            },
        },
    };
}
