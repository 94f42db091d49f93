using System.Text.Json.Nodes;
using LlmProxy.Caching;
using LlmProxy.Pipeline;

namespace LlmProxy.Tests;

/// <summary>
/// Lets tests hand chunks built as JSON nodes to what takes a chunk's JSON text: the text is the node serialized as the
/// gateway writes chunks (compact, default escaping).
/// </summary>
internal static class ChunkJsonExtensions
{
    public static byte[] ToChunkBytes(this JsonObject chunk) => System.Text.Encoding.UTF8.GetBytes(chunk.ToJsonString());

    public static void OnChunk(this IChatResponseObserver observer, JsonObject chunk) => observer.OnChunk(chunk.ToChunkBytes());

    public static void Add(this StreamAssembler assembler, JsonObject chunk) => assembler.Add(chunk.ToChunkBytes());
}
