using System.Runtime.CompilerServices;

namespace LlmProxy.Testing;

/// <summary>Files of the repository itself (Dockerfile, shipped configuration), found from the test's source or output location.</summary>
internal static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        foreach (var start in new[] { Path.GetDirectoryName(thisFile)!, AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "LlmProxy.sln")) && File.Exists(Path.Combine(dir.FullName, "Dockerfile")))
                {
                    return dir.FullName;
                }
            }
        }
        throw new DirectoryNotFoundException("The repository root (LlmProxy.sln, Dockerfile) is not reachable from the test run.");
    }
}
