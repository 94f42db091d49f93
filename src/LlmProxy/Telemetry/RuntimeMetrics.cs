using System.Diagnostics;

namespace LlmProxy.Telemetry;

/// <summary>
/// Process and .NET runtime basics, read when scraped (nothing runs between scrapes). Names follow the
/// Prometheus client libraries' <c>process_*</c> conventions so standard dashboards and alerts work.
/// </summary>
internal static class RuntimeMetrics
{
    private static readonly double StartTimeSeconds = ReadStartTime();

    /// <summary>The families this writes, so that a gateway instrument can never be exposed under one of these names.</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal)
    {
        "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds",
        "dotnet_gc_collections_total", "dotnet_gc_heap_size_bytes", "dotnet_gc_allocated_bytes_total", "dotnet_gc_pause_seconds_total",
        "dotnet_threadpool_threads", "dotnet_threadpool_queue_length", "dotnet_threadpool_work_items_total",
    };

    public static void Write(PrometheusTextWriter writer)
    {
        long residentBytes;
        long virtualBytes;
        using (var process = Process.GetCurrentProcess())
        {
            residentBytes = process.WorkingSet64;
            virtualBytes = process.VirtualMemorySize64;
        }

        writer.WriteMetadata("process_resident_memory_bytes", PrometheusMetricType.Gauge, "Resident memory size in bytes.");
        writer.WriteSample("process_resident_memory_bytes", "", residentBytes);
        writer.WriteMetadata("process_virtual_memory_bytes", PrometheusMetricType.Gauge, "Virtual memory size in bytes.");
        writer.WriteSample("process_virtual_memory_bytes", "", virtualBytes);
        writer.WriteMetadata("process_cpu_seconds_total", PrometheusMetricType.Counter, "Total user and system CPU time spent in seconds.");
        writer.WriteSample("process_cpu_seconds_total", "", Environment.CpuUsage.TotalTime.TotalSeconds);
        writer.WriteMetadata("process_start_time_seconds", PrometheusMetricType.Gauge, "Start time of the process since unix epoch in seconds.");
        writer.WriteSample("process_start_time_seconds", "", StartTimeSeconds);

        // GC.CollectionCount(n) counts collections of generation n or higher; expose each generation on its own,
        // as the runtime's dotnet.gc.collections does.
        var gen2 = GC.CollectionCount(2);
        var gen1 = Math.Max(0, GC.CollectionCount(1) - gen2);
        var gen0 = Math.Max(0, GC.CollectionCount(0) - gen1 - gen2);
        writer.WriteMetadata("dotnet_gc_collections_total", PrometheusMetricType.Counter, "Garbage collections since the process started, by the generation collected.");
        writer.WriteSample("dotnet_gc_collections_total", "generation=\"gen0\"", gen0);
        writer.WriteSample("dotnet_gc_collections_total", "generation=\"gen1\"", gen1);
        writer.WriteSample("dotnet_gc_collections_total", "generation=\"gen2\"", gen2);
        writer.WriteMetadata("dotnet_gc_heap_size_bytes", PrometheusMetricType.Gauge, "Size of the managed heap in bytes, as of the last garbage collection.");
        writer.WriteSample("dotnet_gc_heap_size_bytes", "", GC.GetGCMemoryInfo().HeapSizeBytes);
        writer.WriteMetadata("dotnet_gc_allocated_bytes_total", PrometheusMetricType.Counter, "Bytes allocated on the managed heap since the process started.");
        writer.WriteSample("dotnet_gc_allocated_bytes_total", "", GC.GetTotalAllocatedBytes());
        writer.WriteMetadata("dotnet_gc_pause_seconds_total", PrometheusMetricType.Counter, "Time the runtime was paused for garbage collection since the process started, in seconds.");
        writer.WriteSample("dotnet_gc_pause_seconds_total", "", GC.GetTotalPauseDuration().TotalSeconds);

        writer.WriteMetadata("dotnet_threadpool_threads", PrometheusMetricType.Gauge, "Thread pool threads that currently exist.");
        writer.WriteSample("dotnet_threadpool_threads", "", ThreadPool.ThreadCount);
        writer.WriteMetadata("dotnet_threadpool_queue_length", PrometheusMetricType.Gauge, "Work items queued to the thread pool and not yet started.");
        writer.WriteSample("dotnet_threadpool_queue_length", "", ThreadPool.PendingWorkItemCount);
        writer.WriteMetadata("dotnet_threadpool_work_items_total", PrometheusMetricType.Counter, "Work items the thread pool has completed since the process started.");
        writer.WriteSample("dotnet_threadpool_work_items_total", "", ThreadPool.CompletedWorkItemCount);
    }

    private static double ReadStartTime()
    {
        using var process = Process.GetCurrentProcess();
        return (process.StartTime.ToUniversalTime() - DateTime.UnixEpoch).TotalSeconds;
    }
}
