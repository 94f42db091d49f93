using LlmProxy.Tenancy;

namespace LlmProxy.Tests.Tenancy;

public sealed class ApiKeyHasherTests
{
    [Fact]
    public void Hash_KnownKey_MatchesSha256Hex()
    {
        // echo -n sk-llmproxy-demo | sha256sum
        Assert.Equal("c6de1acacd799db7e8a088fc33e5680ac0aea0020af092b2fee8c0ac50b264cf", ApiKeyHasher.Hash("sk-llmproxy-demo"));
    }

    [Fact]
    public void Hash_LongKey_DoesNotOverflowStackBuffer()
    {
        var key = new string('k', 10_000);
        Assert.Equal(64, ApiKeyHasher.Hash(key).Length);
    }

    [Theory]
    [InlineData("c6de1acacd799db7e8a088fc33e5680ac0aea0020af092b2fee8c0ac50b264cf", true)]
    [InlineData("C6DE1ACACD799DB7E8A088FC33E5680AC0AEA0020AF092B2FEE8C0AC50B264CF", true)]
    [InlineData("sk-llmproxy-demo", false)]
    [InlineData("c6de1acacd799db7e8a088fc33e5680ac0aea0020af092b2fee8c0ac50b264c", false)]
    [InlineData("", false)]
    public void IsValidHash_RecognisesSha256Hex(string value, bool expected) => Assert.Equal(expected, ApiKeyHasher.IsValidHash(value));

    [Fact]
    public void NewKey_IsRandomAndPrefixed()
    {
        var a = ApiKeyHasher.NewKey();
        var b = ApiKeyHasher.NewKey();
        Assert.StartsWith("sk-llmproxy-", a);
        Assert.NotEqual(a, b);
        Assert.True(a.Length >= 48);
    }
}
