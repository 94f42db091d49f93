using System.Text.Json;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// What the Dockerfile's final stage puts into the image from the build context, read from the Dockerfile itself
/// (no Docker engine needed): each image path and the repository file it comes from, the working directory and the
/// exposed ports. Enough of the Dockerfile grammar for this repository: line continuations, stages, WORKDIR, EXPOSE,
/// COPY in shell and JSON form (copies <c>--from</c> another stage are not from the build context and are skipped).
/// </summary>
internal sealed class DockerfileImage
{
    private DockerfileImage(Dictionary<string, string> files, string workDir, IReadOnlyList<int> exposed)
    {
        Files = files;
        WorkDir = workDir;
        ExposedPorts = exposed;
    }

    /// <summary>Image path (absolute, <c>/</c>-separated) to repository path (relative, <c>/</c>-separated); later COPYs win.</summary>
    public IReadOnlyDictionary<string, string> Files { get; }

    /// <summary>The final stage's working directory: the gateway's content root, where it looks for appsettings.json and config/.</summary>
    public string WorkDir { get; }

    public IReadOnlyList<int> ExposedPorts { get; }

    public static DockerfileImage Read(string repositoryRoot)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        var exposed = new List<int>();
        var workDir = "/";
        foreach (var instruction in Instructions(File.ReadAllLines(Path.Combine(repositoryRoot, "Dockerfile"))))
        {
            var space = instruction.IndexOf(' ', StringComparison.Ordinal);
            var keyword = (space < 0 ? instruction : instruction[..space]).ToUpperInvariant();
            var rest = space < 0 ? "" : instruction[(space + 1)..].Trim();
            switch (keyword)
            {
                case "FROM":
                    // Only the last stage becomes the image.
                    files.Clear();
                    exposed.Clear();
                    workDir = "/";
                    break;
                case "WORKDIR":
                    workDir = Combine(workDir, rest);
                    break;
                case "EXPOSE":
                    exposed.AddRange(rest.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p.Split('/')[0], System.Globalization.CultureInfo.InvariantCulture)));
                    break;
                case "COPY" or "ADD":
                    Copy(repositoryRoot, Arguments(rest), workDir, files);
                    break;
            }
        }
        return new DockerfileImage(files, workDir, exposed);
    }

    private static void Copy(string root, List<string> arguments, string workDir, Dictionary<string, string> files)
    {
        if (arguments.Any(a => a.StartsWith("--from", StringComparison.Ordinal)))
        {
            return;
        }
        var paths = arguments.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
        var destination = Combine(workDir, paths[^1]);
        var sources = paths[..^1];
        var intoDirectory = paths[^1].EndsWith('/') || sources.Count > 1;
        foreach (var source in sources)
        {
            var relative = source.Trim('/').Replace("./", "", StringComparison.Ordinal);
            var full = Path.Combine(root, relative);
            if (Directory.Exists(full))
            {
                // A directory's contents are copied into the destination directory.
                foreach (var file in Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories))
                {
                    var inside = Path.GetRelativePath(full, file).Replace('\\', '/');
                    files[destination.TrimEnd('/') + "/" + inside] = Path.GetRelativePath(root, file).Replace('\\', '/');
                }
            }
            else if (File.Exists(full))
            {
                var target = intoDirectory ? destination.TrimEnd('/') + "/" + Path.GetFileName(full) : destination;
                files[target] = relative;
            }
            else
            {
                throw new FileNotFoundException($"The Dockerfile copies '{source}', which is not in the repository.");
            }
        }
    }

    private static List<string> Arguments(string rest) =>
        rest.StartsWith('[')
            ? JsonSerializer.Deserialize<List<string>>(rest)!
            : rest.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();

    private static string Combine(string directory, string path) =>
        path.StartsWith('/') ? path : directory.TrimEnd('/') + "/" + (path.StartsWith("./", StringComparison.Ordinal) ? path[2..] : path);

    /// <summary>Joins continued lines and drops comments and blank lines.</summary>
    private static IEnumerable<string> Instructions(IEnumerable<string> lines)
    {
        var current = new System.Text.StringBuilder();
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || line.Length == 0)
            {
                continue;
            }
            if (line.EndsWith('\\'))
            {
                current.Append(line[..^1]).Append(' ');
                continue;
            }
            current.Append(line);
            yield return current.ToString();
            current.Clear();
        }
    }
}
