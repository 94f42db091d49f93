using LlmProxy.Caching;

namespace LlmProxy.Tests.Caching;

public sealed class ResponseCacheKeyTests
{
    private const string Base = """{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1}""";

    private static string Key(string json, string tenant = "acme", string model = "m") =>
        ResponseCacheKey.Create(tenant, model, CacheTestData.Body(json));

    [Fact]
    public void Create_Always_HasNamespacedTenantModelHashShape()
    {
        var key = Key(Base);

        Assert.Matches("^llmproxy:cache:acme:m:[0-9a-f]{64}$", key);
    }

    [Fact]
    public void Create_ReorderedKeysAndWhitespace_SameKey()
    {
        var reordered = """
            { "seed" : 1,
              "temperature": 0.7,
              "messages": [ { "content": "hi", "role": "user" } ],
              "model": "m" }
            """;

        Assert.Equal(Key(Base), Key(reordered));
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.70,"seed":1.0}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":7e-1,"seed":1E0}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"h\u0069"}],"temperature":0.7,"seed":1}""")]
    public void Create_SameValuesWrittenDifferently_SameKey(string json)
    {
        Assert.Equal(Key(Base), Key(json));
    }

    [Fact]
    public void Create_StreamAndStreamOptions_Ignored()
    {
        var streamed = """{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1}""";
        var explicitNonStream = """{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1}""";

        Assert.Equal(Key(Base), Key(streamed));
        Assert.Equal(Key(Base), Key(explicitNonStream));
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi!"}],"temperature":0.7,"seed":1}""")]
    [InlineData("""{"model":"m","messages":[{"role":"system","content":"hi"}],"temperature":0.7,"seed":1}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":"hi"}],"temperature":0.7,"seed":1}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.71,"seed":1}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":2}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1,"max_tokens":10}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1,"stop":["x"]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1,"response_format":{"type":"json_object"}}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1,"tools":[{"type":"function","function":{"name":"f"}}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1,"tool_choice":"none"}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":1,"user":"u1"}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"seed":"1"}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi","name":null}],"temperature":0.7,"seed":1}""")]
    public void Create_AnyChangeOfMessagesOrParameters_DifferentKey(string json)
    {
        Assert.NotEqual(Key(Base), Key(json));
    }

    [Fact]
    public void Create_ArrayOrder_Matters()
    {
        var a = """{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}""";
        var b = """{"model":"m","messages":[{"role":"user","content":"b"},{"role":"user","content":"a"}]}""";

        Assert.NotEqual(Key(a), Key(b));
    }

    [Fact]
    public void Create_DifferentTenants_DifferentKeys()
    {
        Assert.NotEqual(Key(Base, tenant: "a"), Key(Base, tenant: "b"));
        Assert.StartsWith("llmproxy:cache:a:", Key(Base, tenant: "a"));
    }

    [Fact]
    public void Create_ColonsInTenantOrModel_CannotCollide()
    {
        var first = Key(Base, tenant: "a:b", model: "c");
        var second = Key(Base, tenant: "a", model: "b:c");

        Assert.NotEqual(first, second);
        Assert.StartsWith("llmproxy:cache:a%3Ab:c:", first);
        Assert.StartsWith("llmproxy:cache:a:b%3Ac:", second);
        Assert.NotEqual(Key(Base, tenant: "a%3Ab"), first);
    }

    [Theory]
    [InlineData("0", "0")]
    [InlineData("-0", "0")]
    [InlineData("0.0", "0")]
    [InlineData("1", "1")]
    [InlineData("1.0", "1")]
    [InlineData("1e0", "1")]
    [InlineData("100", "1e2")]
    [InlineData("1E+2", "1e2")]
    [InlineData("0.70", "7e-1")]
    [InlineData("-1.50e3", "-15e2")]
    [InlineData("12345678901234567890123456789", "12345678901234567890123456789")]
    [InlineData("0.000000000000000000000000000000001", "1e-33")]
    public void NormalizeNumber_EqualValues_SameText(string written, string expected)
    {
        Assert.Equal(expected, ResponseCacheKey.NormalizeNumber(written));
    }

    [Fact]
    public void Canonicalize_NestedObjects_SortedWithoutWhitespace()
    {
        var canonical = ResponseCacheKey.Canonicalize(CacheTestData.Body("""{"z":{"b":1,"a":[{"y":true,"x":null}]},"stream":true,"a":"s"}"""));

        Assert.Equal("""{"a":"s","z":{"a":[{"x":null,"y":true}],"b":1}}""", canonical);
    }
}
