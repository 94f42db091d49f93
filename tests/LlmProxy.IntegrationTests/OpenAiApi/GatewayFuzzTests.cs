using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CsCheck;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>
/// Property-based fuzzing of everything a client controls, through the real HTTP pipeline: generated and mutated chat
/// bodies (a valid request with one field broken, random bytes, deep nesting, huge numbers, unusual Unicode with lone
/// surrogates and invalid UTF-8, duplicate keys, wrong types), headers and query strings, against the chat, models,
/// usage, pricing and admin endpoints of a gateway with an OpenAI-routed and a Bedrock-routed model and the response
/// cache on. For every input: no 5xx, and an error in OpenAI's shape whenever the status is 4xx. Afterwards the gateway
/// still serves. A fixed seed in CI; <c>LLMPROXY_FUZZ_ITERATIONS</c> runs longer with a random seed, and
/// <c>LLMPROXY_FUZZ_SEED</c> replays one (a failure prints the seed and the smallest failing input found).
/// </summary>
public sealed class GatewayFuzzTests : IAsyncLifetime
{
    /// <summary>The CI run's PCG stream: any fixed value makes CI run the same cases every time.</summary>
    private const uint CiStream = 1;
    private const long CiIterations = 2500;

    /// <summary>Samples CsCheck may try, after a failure, for a smaller input that fails too.</summary>
    private const long ShrinkIterations = 2000;
    private const string TenantKey = "sk-tenant-fuzz-acme-0123456789";
    private const string OtherTenantKey = "sk-tenant-fuzz-globex-0123456789";
    private const string AdminKey = "sk-admin-fuzz-0123456789";

    private readonly string _accessKeyVariable = "LLMPROXY_TEST_AWS_KEY_" + Guid.NewGuid().ToString("N");
    private readonly string _secretVariable = "LLMPROXY_TEST_AWS_SECRET_" + Guid.NewGuid().ToString("N");
    private SimulatorServer _bedrock = null!;
    private SimulatorServer _openAi = null!;
    private GatewayHost _gateway = null!;
    private HttpClient _http = null!;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> _statuses = new();

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_accessKeyVariable, SimulatorOptions.DefaultBedrockAccessKeyId);
        Environment.SetEnvironmentVariable(_secretVariable, SimulatorOptions.DefaultBedrockSecretAccessKey);
        _bedrock = await SimulatorServer.StartAsync(new SimulatorOptions());
        _openAi = await SimulatorServer.StartAsync(new SimulatorOptions());
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Tenant("globex", OtherTenantKey, "gpt")
            .AdminKey(AdminKey)
            .Set("LlmProxy:Cache:Enabled", "true")
            .Set("LlmProxy:MaxRequestBodyBytes", "65536")
            .OpenAi("gpt", "openai-sim", _openAi.BaseAddress)
            .Deployment("claude", "bedrock-sim", "bedrock", _bedrock.BaseAddress.ToString(), upstreamModel: "anthropic.claude-3-haiku-20240307-v1:0",
                configure: d => d.Set("Region", "us-east-1").Set("Settings:AccessKeyIdEnv", _accessKeyVariable).Set("Settings:SecretAccessKeyEnv", _secretVariable)));
        _http = _gateway.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _gateway.DisposeAsync();
        await _bedrock.DisposeAsync();
        await _openAi.DisposeAsync();
        Environment.SetEnvironmentVariable(_accessKeyVariable, null);
        Environment.SetEnvironmentVariable(_secretVariable, null);
    }

    [Fact]
    public async Task AnyClientInput_NeverA5xx_ErrorsInOpenAiShape_GatewayStillServes()
    {
        var seed = Environment.GetEnvironmentVariable("LLMPROXY_FUZZ_SEED");
        var iterationsText = Environment.GetEnvironmentVariable("LLMPROXY_FUZZ_ITERATIONS");
        var iterations = long.TryParse(iterationsText, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : CiIterations;
        var started = Stopwatch.GetTimestamp();

        if (string.IsNullOrEmpty(seed) && iterationsText is null)
        {
            await RunFixedCasesAsync(iterations);
        }
        else
        {
            // A longer run: CsCheck's own sampling from a random seed (or the one given, to replay a failure), shrinking what fails.
            await Cases.SampleAsync(AssertHandledAsync, seed: string.IsNullOrEmpty(seed) ? null : seed, iter: iterations, threads: 1, print: Print);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"Fuzz: {iterations} cases in {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s ({(string.IsNullOrEmpty(seed) ? iterationsText is null ? "CI seeds" : "random seed" : "seed " + seed)}); "
            + "statuses: " + string.Join(", ", _statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        await AssertStillServesAsync();
    }

    /// <summary>
    /// The CI run: the same <paramref name="count"/> cases every time, case i generated from seed (stream 1, i). A failing
    /// case is handed to CsCheck with its seed, which reproduces it and then looks for a smaller input that fails too.
    /// </summary>
    private async Task RunFixedCasesAsync(long count)
    {
        for (var i = 0UL; i < (ulong)count; i++)
        {
            var pcg = new PCG(CiStream, i);
            var seed = pcg.ToString();
            var input = Cases.Generate(pcg, null!, out _);
            try
            {
                await AssertHandledAsync(input);
            }
            catch (Exception ex) when (ex is not CsCheckException)
            {
                await Cases.SampleAsync(AssertHandledAsync, seed: seed, iter: ShrinkIterations, threads: 1, print: Print);
                throw new InvalidOperationException($"Fuzz case {i} failed (LLMPROXY_FUZZ_SEED={seed} replays it): {Print(input)}", ex);
            }
        }
    }

    private static string Print(FuzzInput input) => input.ToString();

    private async Task AssertHandledAsync(FuzzInput input)
    {
        using var request = input.ToRequest();
        using var response = await _http.SendAsync(request, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);
        var status = (int)response.StatusCode;
        _statuses.AddOrUpdate(status, 1, (_, c) => c + 1);
        if (status >= 500)
        {
            throw new InvalidOperationException($"{status} for {input}: {Encoding.UTF8.GetString(body)}");
        }
        if (status >= 400)
        {
            AssertOpenAiError(status, response.Content.Headers.ContentType, body);
        }
    }

    private static void AssertOpenAiError(int status, MediaTypeHeaderValue? contentType, byte[] body)
    {
        if (contentType?.MediaType != "application/json")
        {
            throw new InvalidOperationException($"{status} with Content-Type '{contentType}' instead of application/json: {Encoding.UTF8.GetString(body)}");
        }
        using var document = JsonDocument.Parse(body);
        if (!document.RootElement.TryGetProperty("error", out var error)
            || !error.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.String
            || !error.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
            || !error.TryGetProperty("param", out _) || !error.TryGetProperty("code", out _))
        {
            throw new InvalidOperationException($"{status} without OpenAI's error shape: {Encoding.UTF8.GetString(body)}");
        }
    }

    private async Task AssertStillServesAsync()
    {
        using var health = await _http.GetAsync("/healthz");
        Assert.Equal(200, (int)health.StatusCode);
        using var ready = await _http.GetAsync("/readyz");
        Assert.Equal(200, (int)ready.StatusCode);
        foreach (var model in new[] { "gpt", "claude" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"still there?"}]}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TenantKey);
            using var response = await _http.SendAsync(request);
            Assert.Equal(200, (int)response.StatusCode);
        }
    }

    // ---- inputs ----------------------------------------------------------------------------------------------------

    /// <summary>One HTTP request. <see cref="ToString"/> is what a failure prints: the request as text, raw bytes as \xNN.</summary>
    internal sealed record FuzzInput(string Method, string Target, (string Name, string Value)[] Headers, byte[]? Body, string? ContentType)
    {
        public HttpRequestMessage ToRequest()
        {
            var request = new HttpRequestMessage(new HttpMethod(Method), Target);
            foreach (var (name, value) in Headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            if (Body is not null)
            {
                request.Content = new ByteArrayContent(Body);
                if (ContentType is not null)
                {
                    request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
                }
            }
            return request;
        }

        public override string ToString()
        {
            var text = new StringBuilder().Append(Method).Append(' ').Append(Target);
            foreach (var (name, value) in Headers)
            {
                text.Append(" | ").Append(name).Append(": ").Append(value);
            }
            if (ContentType is not null)
            {
                text.Append(" | Content-Type: ").Append(ContentType);
            }
            if (Body is not null)
            {
                text.Append(" | body (").Append(Body.Length).Append(" bytes): ").Append(Printable(Body.Length > 2000 ? Body[..2000] : Body));
            }
            return text.ToString();
        }

        /// <summary>Valid UTF-8 as text; each byte of an invalid sequence as \xNN.</summary>
        private static string Printable(byte[] bytes)
        {
            var text = new StringBuilder();
            var rest = bytes.AsSpan();
            while (!rest.IsEmpty)
            {
                var status = System.Text.Rune.DecodeFromUtf8(rest, out var rune, out var consumed);
                if (status == System.Buffers.OperationStatus.Done && !Rune.IsControl(rune))
                {
                    text.Append(rune.ToString());
                }
                else
                {
                    foreach (var b in rest[..consumed])
                    {
                        text.Append(CultureInfo.InvariantCulture, $"\\x{b:X2}");
                    }
                }
                rest = rest[consumed..];
            }
            return text.ToString();
        }
    }

    private static readonly string[] Models = ["gpt", "claude", "not-configured", ""];

    // Strings: ordinary, unusual Unicode (valid), and invalid text: raw bytes that are not UTF-8 and lone surrogate escapes.
    // Each is the JSON text of a string, quotes included, as bytes: the generator must be able to produce invalid UTF-8.
    private static readonly Gen<byte[]> JsonString = Gen.Frequency(
        (4, Gen.String[Gen.Char["abcdefghij klmnop,.:{}[]"], 0, 20].Select(Quote)),
        (3, Gen.OneOf(
            "\"😀 emoji, 中文, العربية\"", "\"\\u0000 nul\"", "\"\\uffff\\ufffe\"", "\"\u200b\u200d\u202e rtl\"",
            "\"\\ud83d\\ude00 a pair\"", "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\"", "\"\u00e9 precomposed e\u0301 combined\"", "\"\"").Select(Utf8)),
        (2, Gen.OneOf("\"a\\ud800b\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800\"", "\"x\\udbff\\udbff\"").Select(Utf8)),
        (2, Gen.Select(Gen.OneOf<byte[]>([0xC3, 0x28], [0xFF], [0x80], [0xED, 0xA0, 0x80], [0xF0, 0x9F, 0x98], [0xC0, 0xAF], [0xF5, 0x80, 0x80, 0x80]),
            Gen.String[Gen.Char["abc"], 0, 5], (bad, tail) => Concat("\"a"u8.ToArray(), bad, Utf8(tail + "\"")))));

    private static readonly Gen<byte[]> JsonNumber = Gen.OneOf(
        "0", "-0", "1", "-1", "0.5", "1e999999", "-1e-999999", "123456789012345678901234567890", "1.7976931348623157e309",
        "9223372036854775808", "2147483648", "4.0", "1E+2").Select(Utf8);

    /// <summary>Any JSON value, nested up to a few levels, with duplicate keys now and then.</summary>
    private static readonly Gen<byte[]> JsonValue = Gen.Recursive<byte[]>((depth, value) => depth > 3
        ? Gen.Frequency((3, JsonString), (2, JsonNumber), (1, Gen.OneOf("true", "false", "null").Select(Utf8)))
        : Gen.Frequency(
            (3, JsonString),
            (2, JsonNumber),
            (1, Gen.OneOf("true", "false", "null").Select(Utf8)),
            (1, value.Array[0, 4].Select(items => Join("[", items, "]"))),
            (1, Gen.Select(JsonString.Array[0, 4], value.Array[4], (names, values) =>
                Join("{", names.Select((name, i) => Concat(name, ":"u8.ToArray(), values[i])).ToArray(), "}")))));

    /// <summary>A valid chat request as (field, JSON value) pairs, so that one field can be broken.</summary>
    private static readonly Gen<List<(string Name, byte[] Value)>> ValidChat = Gen.Select(Gen.OneOf(Models[..2]), Gen.Bool, Gen.Int[0, 3], (model, stream, extras) =>
    {
        var fields = new List<(string, byte[])>
        {
            ("model", Utf8($"\"{model}\"")),
            ("messages", Utf8("""[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there"}]""")),
        };
        if (stream)
        {
            fields.Add(("stream", Utf8("true")));
            fields.Add(("stream_options", Utf8("""{"include_usage":true}""")));
        }
        if (extras >= 1)
        {
            fields.Add(("temperature", Utf8("0")));
            fields.Add(("max_tokens", Utf8("16")));
        }
        if (extras >= 2)
        {
            fields.Add(("tools", Utf8("""[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""")));
        }
        if (extras >= 3)
        {
            fields[1] = ("messages", Utf8("""[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"sunny"}]"""));
        }
        return fields;
    });

    private static readonly string[] Fields = ["model", "messages", "stream", "stream_options", "temperature", "max_tokens", "n", "tools", "tool_choice", "stop", "user", "metadata", "response_format", "seed", "top_p", "logit_bias", "x-unknown"];

    /// <summary>Places inside a message where a broken value goes (the key, or an index into content parts / tool calls).</summary>
    private static readonly Gen<byte[]> BrokenMessages = Gen.Select(
        Gen.OneOf("role", "content", "name", "tool_calls", "tool_call_id", "x"), JsonValue, Gen.OneOf("user", "assistant", "tool", "system", "developer", "function"),
        (key, value, role) => Concat(Utf8($$"""[{"role":"{{role}}","""), Utf8($"\"{key}\":"), value, Utf8("}]")));

    private static readonly Gen<byte[]> ChatBody = Gen.Frequency(
        // A valid request (so the fuzzer also reaches both providers and the cache).
        (2, ValidChat.Select(Object)),
        // One field replaced by any value, or added.
        (6, Gen.Select(ValidChat, Gen.OneOf(Fields), JsonValue, (fields, name, value) => Object(Set(fields, name, value)))),
        // Messages broken inside.
        (4, Gen.Select(ValidChat, BrokenMessages, (fields, messages) => Object(Set(fields, "messages", messages)))),
        // Strings in content parts and tool-call arguments (JSON inside a string).
        (3, Gen.Select(ValidChat, JsonString, Gen.Bool, (fields, text, parts) => Object(Set(fields, "messages", parts
            ? Concat(Utf8("""[{"role":"user","content":[{"type":"text","text":"""), text, Utf8("}]}]"))
            : Concat(Utf8("""[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"""), text, Utf8("}}]}]")))))),
        // A property name that is not valid text.
        (2, Gen.Select(ValidChat, JsonString, (fields, name) => Object(fields, extraRawName: name))),
        // Duplicate keys.
        (2, Gen.Select(ValidChat, Gen.OneOf(Fields), JsonValue, (fields, name, value) => Object([.. fields, (name, value)]))),
        // Deep nesting, in a field or as the whole body.
        (2, Gen.Select(ValidChat, Gen.Int[1, 3000], Gen.Bool, Gen.Bool, (fields, depth, arrays, whole) =>
        {
            var nested = Concat(Utf8(string.Concat(Enumerable.Repeat(arrays ? "[" : "{\"a\":", depth))), Utf8("1"), Utf8(new string(arrays ? ']' : '}', depth)));
            return whole ? nested : Object(Set(fields, "metadata", nested));
        })),
        // Huge numbers where numbers are expected.
        (2, Gen.Select(ValidChat, Gen.OneOf("max_tokens", "temperature", "n", "top_p", "seed", "max_completion_tokens"), JsonNumber,
            (fields, name, number) => Object(Set(fields, name, number)))),
        // Random bytes, and a valid body cut short or with a byte flipped.
        (2, Gen.Byte.Array[0, 300]),
        (2, Gen.Select(ValidChat, Gen.Int[0, 400], Gen.Byte, Gen.Bool, (fields, at, b, cut) =>
        {
            var body = Object(fields);
            var i = Math.Min(at, body.Length - 1);
            if (cut)
            {
                return body[..i];
            }
            body[i] = b;
            return body;
        })));

    private static readonly Gen<string?> ContentTypes = Gen.Frequency(
        (8, Gen.Const<string?>("application/json")),
        (2, Gen.OneOf<string?>(null, "application/json; charset=utf-8", "APPLICATION/JSON;charset=\"UTF-8\"", "application/json; charset=latin1",
            "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json;", ";;", "*/*", "application/jsonl")));

    /// <summary>
    /// Header values: sane and odd, printable ASCII within the web server's limits. Bytes the web server itself refuses
    /// (non-ASCII, control characters, oversized headers) never reach the gateway's code and are left out here.
    /// </summary>
    private static readonly Gen<string> HeaderValue = Gen.Frequency(
        (3, Gen.String[Gen.Char[' ', '~'], 0, 40]),
        (1, Gen.OneOf("no-store", "no-cache", "max-age=abc", "no-store, no-cache", "-1", "0", "1e309", "NaN", "99999999999999999999", "")));

    private static readonly Gen<(string, string)[]> Headers = Gen.Select(
        Gen.Int[0, 3],
        Gen.Select(Gen.OneOf("Cache-Control", "x-llmproxy-cache-ttl", "x-request-id", "x-llmproxy-agent", "Accept", "x-fuzz", "Content-Encoding", "Expect"), HeaderValue).Array[3],
        (n, all) => all[..n]);

    /// <summary>Query values: dates, numbers, percent-encoded bytes that are not UTF-8, and text.</summary>
    private static readonly Gen<string> QueryValue = Gen.Frequency(
        (2, Gen.OneOf("2026-11-01", "2026-11-01T12:00:00Z", "1700000000", "-1", "99999999999999999999999", "0", "1e10", "", "model", "day", "agent", "gpt,claude",
            "gpt,gpt", "acme")),
        (2, Gen.OneOf("%C3%28", "%FF", "%ED%A0%80", "%00", "%E2%80%AE", "%F0%9F%98%80", "%", "%zz", "a%2Cb", "%2F%2E%2E")),
        (1, Gen.String[Gen.Char["abcdefgh0123456789-:,"], 0, 12]));

    /// <summary>A path segment: a query value except NUL, which the web server refuses in a path before the gateway's code runs.</summary>
    private static readonly Gen<string> PathValue = QueryValue.Where(v => v != "%00");

    private static readonly Gen<string> Query = Gen.Select(
        Gen.OneOf("from", "to", "group_by", "model", "agent", "tenant", "models", "input_tokens", "output_tokens", "cached_tokens", "x").Array[0, 5], QueryValue.Array[5],
        (names, values) => names.Length == 0 ? "" : "?" + string.Join("&", names.Select((name, i) => name + "=" + values[i])));

    /// <summary>Mostly the right kind of key for the path (a tenant's for /v1, the admin's for /admin), now and then another or none.</summary>
    private static Gen<string> KeyFor(string path) => Gen.Frequency(
        (10, Gen.Const(path.StartsWith("/admin", StringComparison.Ordinal) ? AdminKey : TenantKey)),
        (2, Gen.Const(OtherTenantKey)),
        (1, Gen.Const(path.StartsWith("/admin", StringComparison.Ordinal) ? TenantKey : AdminKey)),
        (1, Gen.OneOf("", "sk-wrong", "Bearer", "Basic YWxhZGRpbjpvcGVu", "Bearer  " + TenantKey, "bearer " + TenantKey)));

    private static readonly Gen<string> Key = KeyFor("/v1");

    private static (string, string)[] WithAuth(string key, (string, string)[] headers) =>
        key.StartsWith("Bearer", StringComparison.Ordinal) || key.StartsWith("Basic", StringComparison.Ordinal) || key.StartsWith("bearer", StringComparison.Ordinal)
            ? [("Authorization", key), .. headers]
            : key.Length == 0 ? headers : [("Authorization", "Bearer " + key), .. headers];

    private static readonly Gen<FuzzInput> Chat = Gen.Select(Key, Headers, ChatBody, ContentTypes, (key, headers, body, type) =>
        new FuzzInput("POST", "/v1/chat/completions", WithAuth(key, headers), body, type));

    private static readonly Gen<FuzzInput> Reads = Gen.OneOf("/v1/models", "/v1/models/", "/v1/usage", "/v1/usage/estimate", "/v1/pricing", "/v1/pricing/compare",
            "/admin/usage", "/admin/usage/estimate", "/admin/deployments", "/healthz", "/readyz", "/metrics", "/v1/unknown", "/admin/", "/v1/models/gpt")
        .SelectMany(path => Gen.Select(KeyFor(path), Headers,
            Gen.Frequency((3, Query), (1, PathValue.Select(v => v.Length == 0 ? "" : "/" + v))),
            Gen.Frequency((6, Gen.Const("GET")), (1, Gen.OneOf("POST", "PUT", "DELETE", "PATCH", "OPTIONS"))),
            (key, headers, query, method) => new FuzzInput(method, path + query, WithAuth(key, headers), null, null)));

    /// <summary>Admin actions; never drain or recover a real deployment, which would rightly make the next requests 503.</summary>
    private static readonly Gen<FuzzInput> AdminActions = Gen.Select(KeyFor("/admin"), Headers,
        Gen.Frequency(
            (2, Gen.Select(Gen.OneOf("openai-sim", "bedrock-sim"), Gen.OneOf("reset", "restart", "", "%C3%28"), (id, action) => $"/admin/deployments/{id}/{action}")),
            (2, Gen.Select(PathValue, Gen.OneOf("drain", "recover", "reset", "x"), (id, action) => $"/admin/deployments/x{id}/{action}")),
            (1, Gen.Const("/admin/config/reload"))),
        Gen.Frequency((2, Gen.Const((byte[]?)null)), (1, JsonValue.Select(v => (byte[]?)v)), (1, Gen.Byte.Array[0, 50].Select(v => (byte[]?)v))),
        ContentTypes,
        (key, headers, path, body, type) => new FuzzInput("POST", path, WithAuth(key, headers), body, type));

    private static readonly Gen<FuzzInput> Cases = Gen.Frequency((6, Chat), (3, Reads), (1, AdminActions));

    // ---- JSON text helpers -----------------------------------------------------------------------------------------

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static byte[] Quote(string text) => Utf8(JsonSerializer.Serialize(text));

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static byte[] Join(string open, byte[][] items, string close)
    {
        var parts = new List<byte[]> { Utf8(open) };
        for (var i = 0; i < items.Length; i++)
        {
            if (i > 0)
            {
                parts.Add(Utf8(","));
            }
            parts.Add(items[i]);
        }
        parts.Add(Utf8(close));
        return Concat([.. parts]);
    }

    private static List<(string Name, byte[] Value)> Set(List<(string Name, byte[] Value)> fields, string name, byte[] value)
    {
        var copy = fields.Where(f => f.Name != name).ToList();
        copy.Add((name, value));
        return copy;
    }

    private static byte[] Object(List<(string Name, byte[] Value)> fields) => Object(fields, null);

    private static byte[] Object(List<(string Name, byte[] Value)> fields, byte[]? extraRawName)
    {
        var members = fields.Select(f => Concat(Quote(f.Name), Utf8(":"), f.Value)).ToList();
        if (extraRawName is not null)
        {
            members.Add(Concat(extraRawName, Utf8(":1")));
        }
        return Join("{", [.. members], "}");
    }
}
