using LlmProxy.Tenancy;

namespace LlmProxy.Hosting;

/// <summary>
/// <c>llmproxy hash-key [key]</c> prints the SHA-256 hash to put in configuration. With no key it reads one
/// line from standard input (so the key stays out of shell history); with <c>--new</c> it creates a key.
/// </summary>
internal static class HashKeyCommand
{
    public const string Name = "hash-key";

    public static int Run(string[] args, TextReader input, TextWriter output, TextWriter error)
    {
        if (args.Contains("--new"))
        {
            var key = ApiKeyHasher.NewKey();
            output.WriteLine($"key:    {key}");
            output.WriteLine($"sha256: {ApiKeyHasher.Hash(key)}");
            return 0;
        }
        var value = args.Length > 0 ? args[0] : input.ReadLine();
        if (string.IsNullOrWhiteSpace(value))
        {
            error.WriteLine("usage: llmproxy hash-key <key> | hash-key --new | echo <key> | llmproxy hash-key");
            return 2;
        }
        output.WriteLine(ApiKeyHasher.Hash(value.Trim()));
        return 0;
    }
}
