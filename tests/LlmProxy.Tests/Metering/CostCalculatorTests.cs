using LlmProxy.Metering;

namespace LlmProxy.Tests.Metering;

public sealed class CostCalculatorTests
{
    private static readonly ModelPrice Gpt4o = new("openai", "gpt-4o", [], 2.50m, 10.00m, 1.25m, new DateOnly(2024, 10, 2));
    private static readonly ModelPrice Haiku = new("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", [], 0.25m, 1.25m, null, new DateOnly(2024, 3, 13));

    [Fact]
    public void Compute_PromptAndCompletion_PricesEachPerMillion()
    {
        // 1,000 × $2.50/M + 500 × $10/M = $0.0025 + $0.005
        Assert.Equal(0.0075m, CostCalculator.Compute(Gpt4o, promptTokens: 1000, completionTokens: 500));
    }

    [Fact]
    public void Compute_CachedPromptTokens_ChargedAtTheCachedPriceAndNotTwice()
    {
        // 600 uncached × $2.50/M + 400 cached × $1.25/M + 500 × $10/M = $0.0015 + $0.0005 + $0.005
        Assert.Equal(0.007m, CostCalculator.Compute(Gpt4o, promptTokens: 1000, completionTokens: 500, cachedTokens: 400));
    }

    [Fact]
    public void Compute_NoCachedPrice_CachedTokensCostTheInputPrice()
    {
        // 2,000 prompt × $0.25/M (cache or not) + 1,000 × $1.25/M = $0.0005 + $0.00125
        Assert.Equal(0.00175m, CostCalculator.Compute(Haiku, promptTokens: 2000, completionTokens: 1000, cachedTokens: 1000));
    }

    [Fact]
    public void Compute_MillionOfEach_IsTheListPrices()
    {
        var gpt4 = new ModelPrice("openai", "gpt-4", [], 30m, 60m, null, new DateOnly(2023, 3, 14));
        Assert.Equal(90m, CostCalculator.Compute(gpt4, 1_000_000, 1_000_000));
    }

    [Fact]
    public void Compute_SingleTokens_SumExactlyInDecimal()
    {
        var mini = new ModelPrice("openai", "gpt-4o-mini", [], 0.15m, 0.60m, 0.075m, new DateOnly(2024, 7, 18));
        var one = CostCalculator.Compute(mini, 1, 0);
        Assert.Equal(0.00000015m, one);

        var sum = 0m;
        for (var i = 0; i < 1_000_000; i++)
        {
            sum += one;
        }
        Assert.Equal(0.15m, sum);
    }

    [Fact]
    public void Compute_CachedAbovePrompt_CountsAtMostThePrompt()
    {
        Assert.Equal(CostCalculator.Compute(Gpt4o, 100, 0, 100), CostCalculator.Compute(Gpt4o, 100, 0, 500));
    }

    [Fact]
    public void Compute_NegativeTokens_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CostCalculator.Compute(Gpt4o, -1, 0));
    }

    [Fact]
    public void Compute_ZeroTokens_IsZero()
    {
        Assert.Equal(0m, CostCalculator.Compute(Gpt4o, 0, 0));
    }

    [Fact]
    public void Normalize_DropsTrailingZeros()
    {
        Assert.Equal("0.0075", CostCalculator.Normalize(0.0075000m).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
