using System.Text;
using LlmProxy.OpenAi;

namespace LlmProxy.Tests.OpenAi;

public sealed class JsonTextValidatorTests
{
    /// <summary>JSON text with <c>{BAD}</c> replaced by the raw bytes 0xC3 0x28 (a lead byte followed by '(': invalid UTF-8).</summary>
    private static byte[] WithInvalidUtf8(string json)
    {
        var parts = json.Split("{BAD}");
        var bytes = new List<byte>();
        for (var i = 0; i < parts.Length; i++)
        {
            if (i > 0)
            {
                bytes.AddRange([0xC3, 0x28]);
            }
            bytes.AddRange(Encoding.UTF8.GetBytes(parts[i]));
        }
        return bytes.ToArray();
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"a{BAD}b"}]}""", "messages[0].content")]
    [InlineData("""{"model":"m{BAD}","messages":[]}""", "model")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"ok"},{"role":"user","content":[{"type":"text","text":"x{BAD}"}]}]}""", "messages[1].content[0].text")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"é\n{BAD}"}]}""", "messages[0].content")]
    [InlineData("""{"model":"m","metadata":{"k":["a","b","{BAD}"]}}""", "metadata.k[2]")]
    public void Validate_InvalidUtf8InAValue_Returns400NamingThePath(string json, string param)
    {
        var error = JsonTextValidator.Validate(WithInvalidUtf8(json));

        Assert.NotNull(error);
        Assert.Equal(400, error.StatusCode);
        Assert.Equal("invalid_value", error.Error.Code);
        Assert.Equal("invalid_request_error", error.Error.Type);
        Assert.Equal(param, error.Error.Param);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"a\ud800b"}]}""", "messages[0].content")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"a\udc00"}]}""", "messages[0].content")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\ud800\u0041"}]}""", "messages[0].content")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\ud800"}]}""", "messages[0].content")]
    [InlineData("""{"model":"m","stop":["\n","x\udfff"]}""", "stop[1]")]
    public void Validate_LoneSurrogateEscape_Returns400NamingThePath(string json, string param)
    {
        var error = JsonTextValidator.Validate(Encoding.UTF8.GetBytes(json));

        Assert.NotNull(error);
        Assert.Equal("invalid_value", error.Error.Code);
        Assert.Equal(param, error.Error.Param);
    }

    [Fact]
    public void Validate_LongEscapedStringWithLoneSurrogate_IsFoundBeyondTheStackBuffer()
    {
        var json = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + string.Concat(Enumerable.Repeat("\\n", 5000)) + "\\ud800\"}]}";

        var error = JsonTextValidator.Validate(Encoding.UTF8.GetBytes(json));

        Assert.Equal("messages[0].content", error?.Error.Param);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","bad\ud800":"x"}]}""", "messages[0]")]
    [InlineData("""{"a\udc00":1}""", null)]
    public void Validate_LoneSurrogateInAPropertyName_NamesTheObject(string json, string? param)
    {
        var error = JsonTextValidator.Validate(Encoding.UTF8.GetBytes(json));

        Assert.NotNull(error);
        Assert.Equal("invalid_value", error.Error.Code);
        Assert.Equal(param, error.Error.Param);
        Assert.Contains("property name", error.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_InvalidUtf8InAPropertyName_NamesTheObject()
    {
        var error = JsonTextValidator.Validate(WithInvalidUtf8("""{"messages":[{"role":"user","x{BAD}":"y"}]}"""));

        Assert.Equal("messages[0]", error?.Error.Param);
    }

    [Fact]
    public void Validate_EscapedPropertyNamesOnThePath_AreUnescapedInTheParam()
    {
        var error = JsonTextValidator.Validate(Encoding.UTF8.GetBytes("""{"me\u0073sages":[{"c\u00e9":"\ud800"}]}"""));

        Assert.Equal("messages[0].cé", error?.Error.Param);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"plain ascii"}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"émoji 😀, 中文, \u00e9, \ud83d\ude00 (a pair), \n\t\"\\\/"}]}""")]
    [InlineData("""{"n":[1,2.5e300,-0,true,false,null,{},[]],"deep":[[[[[["x"]]]]]]}""")]
    [InlineData("""{"k":"\uffff\ufffe\u0000"}""")]
    public void Validate_ValidText_ReturnsNull(string json)
    {
        Assert.Null(JsonTextValidator.Validate(Encoding.UTF8.GetBytes(json)));
    }

    [Fact]
    public void Validate_EncodedSurrogateInUtf8_IsInvalid()
    {
        // 0xED 0xA0 0x80 is U+D800 encoded as if it were a character: not UTF-8.
        var json = Encoding.UTF8.GetBytes("""{"content":"a"}""").ToList();
        json.InsertRange(json.Count - 2, [0xED, 0xA0, 0x80]);

        Assert.Equal("content", JsonTextValidator.Validate(json.ToArray())?.Error.Param);
    }

    [Fact]
    public void Validate_NestingDeeperThanTheStackFrames_KeepsThePath()
    {
        var json = new string('[', 40) + "\"\\ud800\"" + new string(']', 40);

        var error = JsonTextValidator.Validate(Encoding.UTF8.GetBytes(json));

        Assert.Equal(string.Concat(Enumerable.Repeat("[0]", 40)), error?.Error.Param);
    }

    [Fact]
    public void Validate_MalformedJson_LeavesItToTheParser()
    {
        Assert.Null(JsonTextValidator.Validate(Encoding.UTF8.GetBytes("""{"a":"\ud800""")));
    }
}
