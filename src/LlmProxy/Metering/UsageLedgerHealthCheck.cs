using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LlmProxy.Metering;

/// <summary>
/// Readiness of the usage ledger. Healthy when the store answers; Degraded (still ready: requests are served and their
/// records wait in memory or in the spill file) when it does not; Unhealthy only when records are being lost (the store is
/// down and the spill file cannot be written either).
/// </summary>
internal sealed class UsageLedgerHealthCheck(IUsageStore store, UsageLedgerWriter writer, UsageSpillFile spill) : IHealthCheck
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            await store.CheckHealthAsync(timeout.Token);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            var writable = SpillDirectoryWritable();
            var message = $"usage store {store.Name} unreachable ({ex.GetType().Name}: {ex.Message}); {writer.Pending} record(s) pending, " +
                (writable ? $"overflow spilled to {spill.ActivePath}" : "and the spill directory is not writable: records are being lost");
            return writable ? HealthCheckResult.Degraded(message) : HealthCheckResult.Unhealthy(message);
        }
        var state = writer.StoreState;
        return state.Down
            ? HealthCheckResult.Degraded($"usage store {store.Name} reachable but the last write failed ({state.Error}); {writer.Pending} record(s) pending")
            : HealthCheckResult.Healthy($"usage store {store.Name} reachable; {writer.Pending} record(s) pending" + (spill.HasRecords ? ", spill file being replayed" : ""));
    }

    private bool SpillDirectoryWritable()
    {
        try
        {
            var directory = Path.GetDirectoryName(spill.ActivePath)!;
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, ".llmproxy-write-probe");
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
