using System.Diagnostics;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// tests/scripts/check-kubernetes-manifests.sh guards the management listener in the manifests: it passes on the shipped
/// ones and fails on a copy that exposes the management port through the Service or probes and scrapes the public port.
/// </summary>
public sealed class KubernetesManifestCheckTests
{
    [Fact]
    public async Task CheckScript_ShippedManifests_Pass()
    {
        var (exitCode, output) = await RunCheckAsync(edit: null);

        Assert.True(exitCode == 0, output);
        Assert.Contains("ok: management port 9090: probes and prometheus.io annotations use it, the Service exposes only 8080", output);
    }

    [Fact]
    public async Task CheckScript_ServiceTargetsManagementPort_Fails()
    {
        var (exitCode, output) = await RunCheckAsync(directory =>
            Replace(Path.Combine(directory, "service.yaml"), "targetPort: http }", "targetPort: management }"));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("FAILED: the Service exposes the management port 9090", output);
    }

    [Fact]
    public async Task CheckScript_ServiceAddsManagementPortBesideThePublicOne_Fails()
    {
        var (exitCode, output) = await RunCheckAsync(directory =>
            Replace(Path.Combine(directory, "service.yaml"), "    - { name: http, port: 80, targetPort: http }",
                "    - { name: http, port: 80, targetPort: http }\n    - { name: metrics, port: 9090, targetPort: 9090 }"));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("FAILED: the Service exposes the management port 9090", output);
    }

    [Fact]
    public async Task CheckScript_ProbesAndScrapeOnPublicPort_Fails()
    {
        var (exitCode, output) = await RunCheckAsync(directory =>
        {
            var deployment = Path.Combine(directory, "deployment.yaml");
            Replace(deployment, "port: management }", "port: http }");
            Replace(deployment, "prometheus.io/port: \"9090\"", "prometheus.io/port: \"8080\"");
        });

        Assert.NotEqual(0, exitCode);
        Assert.Contains("FAILED: readinessProbe uses port 8080, not the management port 9090", output);
        Assert.Contains("FAILED: livenessProbe uses port 8080", output);
        Assert.Contains("FAILED: the prometheus.io/port annotation is '8080', not the management port 9090", output);
    }

    /// <summary>Runs the script on a copy of config/kubernetes, changed by <paramref name="edit"/>.</summary>
    private static async Task<(int ExitCode, string Output)> RunCheckAsync(Action<string>? edit)
    {
        var directory = Directory.CreateTempSubdirectory("llmproxy-k8s-");
        try
        {
            foreach (var file in Directory.EnumerateFiles(RepositoryFiles.PathOf("config/kubernetes")))
            {
                File.Copy(file, Path.Combine(directory.FullName, Path.GetFileName(file)));
            }
            edit?.Invoke(directory.FullName);
            var start = new ProcessStartInfo("bash", [RepositoryFiles.PathOf("tests/scripts/check-kubernetes-manifests.sh"), directory.FullName])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout + await stderr);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static void Replace(string path, string old, string replacement)
    {
        var text = File.ReadAllText(path);
        Assert.Contains(old, text);
        File.WriteAllText(path, text.Replace(old, replacement, StringComparison.Ordinal));
    }
}
