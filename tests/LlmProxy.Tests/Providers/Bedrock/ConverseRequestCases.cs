namespace LlmProxy.Tests.Providers.Bedrock;

/// <summary>
/// One case of OpenAI request → Converse request. Either <see cref="Converse"/> (the expected body) or
/// <see cref="ErrorParam"/> (a 400 naming that parameter) is set.
/// </summary>
public sealed record RequestCase(string OpenAi, string? Converse = null, string? ErrorParam = null, string? ErrorCode = null,
    string? ErrorContains = null, bool DropUnsupportedParams = false);

/// <summary>The fixtures: readable JSON in, JSON (or an error) out.</summary>
internal static class ConverseRequestCases
{
    private const string Png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    public static readonly Dictionary<string, RequestCase> All = new()
    {
        ["user text"] = new(
            """{"model":"claude","messages":[{"role":"user","content":"Hello"}]}""",
            """{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"""),

        ["system and developer messages anywhere become system blocks"] = new(
            """
            {"model":"claude","messages":[
              {"role":"system","content":"You are terse."},
              {"role":"user","content":"Hi"},
              {"role":"developer","content":[{"type":"text","text":"Answer in French."},{"type":"text","text":"No emoji."}]},
              {"role":"user","content":"What time is it?"}
            ]}
            """,
            """
            {"system":[{"text":"You are terse."},{"text":"Answer in French."},{"text":"No emoji."}],
             "messages":[{"role":"user","content":[{"text":"Hi"},{"text":"What time is it?"}]}]}
            """),

        ["consecutive same-role messages are merged"] = new(
            """
            {"model":"claude","messages":[
              {"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"}]},
              {"role":"assistant","content":"c"},{"role":"assistant","content":"d"},
              {"role":"user","content":"e"}
            ]}
            """,
            """
            {"messages":[
              {"role":"user","content":[{"text":"a"},{"text":"b"}]},
              {"role":"assistant","content":[{"text":"c"},{"text":"d"}]},
              {"role":"user","content":[{"text":"e"}]}
            ]}
            """),

        ["conversation starting with assistant is rejected"] = new(
            """{"model":"claude","messages":[{"role":"system","content":"s"},{"role":"assistant","content":"Hi!"},{"role":"user","content":"Hello"}]}""",
            ErrorParam: "messages[1]", ErrorCode: "invalid_value", ErrorContains: "start with a user message"),

        ["only system messages are rejected"] = new(
            """{"model":"claude","messages":[{"role":"system","content":"s"}]}""",
            ErrorParam: "messages", ErrorCode: "invalid_value", ErrorContains: "at least one user message"),

        ["empty assistant message is left out"] = new(
            """{"model":"claude","messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"user","content":"b"}]}""",
            """{"messages":[{"role":"user","content":[{"text":"a"},{"text":"b"}]}]}"""),

        ["assistant content and tool calls become text then toolUse blocks"] = new(
            """
            {"model":"claude","tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
             "messages":[
              {"role":"user","content":"Weather in Paris?"},
              {"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"18C, sunny"}
            ]}
            """,
            """
            {"messages":[
              {"role":"user","content":[{"text":"Weather in Paris?"}]},
              {"role":"assistant","content":[{"text":"Let me check."},{"toolUse":{"toolUseId":"call_1","name":"get_weather","input":{"city":"Paris"}}}]},
              {"role":"user","content":[{"toolResult":{"toolUseId":"call_1","content":[{"text":"18C, sunny"}]}}]}
             ],
             "toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","description":"Weather now","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}}]}}
            """),

        ["parallel tool calls and their results are merged into one user turn"] = new(
            """
            {"model":"claude","tool_choice":"auto","tools":[
               {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
               {"type":"function","function":{"name":"get_time"}}],
             "messages":[
              {"role":"user","content":"Weather and time in Paris and Oslo?"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
                {"id":"call_c","type":"function","function":{"name":"get_time","arguments":""}}]},
              {"role":"tool","tool_call_id":"call_a","content":"18C"},
              {"role":"tool","tool_call_id":"call_b","content":[{"type":"text","text":"-2C"},{"type":"text","text":" snow"}]},
              {"role":"tool","tool_call_id":"call_c","content":"12:00"},
              {"role":"user","content":"Thanks. Summarize."}
            ]}
            """,
            """
            {"messages":[
              {"role":"user","content":[{"text":"Weather and time in Paris and Oslo?"}]},
              {"role":"assistant","content":[
                {"toolUse":{"toolUseId":"call_a","name":"get_weather","input":{"city":"Paris"}}},
                {"toolUse":{"toolUseId":"call_b","name":"get_weather","input":{"city":"Oslo"}}},
                {"toolUse":{"toolUseId":"call_c","name":"get_time","input":{}}}]},
              {"role":"user","content":[
                {"toolResult":{"toolUseId":"call_a","content":[{"text":"18C"}]}},
                {"toolResult":{"toolUseId":"call_b","content":[{"text":"-2C"},{"text":" snow"}]}},
                {"toolResult":{"toolUseId":"call_c","content":[{"text":"12:00"}]}},
                {"text":"Thanks. Summarize."}]}
             ],
             "toolConfig":{
               "tools":[
                 {"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"}}}}}},
                 {"toolSpec":{"name":"get_time","inputSchema":{"json":{"type":"object","properties":{}}}}}],
               "toolChoice":{"auto":{}}}}
            """),

        ["tool history without tools gets a synthesized toolConfig"] = new(
            """
            {"model":"claude","messages":[
              {"role":"user","content":"Weather?"},
              {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{}"}},
                                                {"id":"t2","type":"function","function":{"name":"get_weather","arguments":"{}"}},
                                                {"id":"t3","type":"function","function":{"name":"lookup","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"t1","content":"sunny"},
              {"role":"tool","tool_call_id":"t2","content":"rain"},
              {"role":"tool","tool_call_id":"t3","content":"ok"}
            ]}
            """,
            """
            {"messages":[
              {"role":"user","content":[{"text":"Weather?"}]},
              {"role":"assistant","content":[
                {"toolUse":{"toolUseId":"t1","name":"get_weather","input":{}}},
                {"toolUse":{"toolUseId":"t2","name":"get_weather","input":{}}},
                {"toolUse":{"toolUseId":"t3","name":"lookup","input":{}}}]},
              {"role":"user","content":[
                {"toolResult":{"toolUseId":"t1","content":[{"text":"sunny"}]}},
                {"toolResult":{"toolUseId":"t2","content":[{"text":"rain"}]}},
                {"toolResult":{"toolUseId":"t3","content":[{"text":"ok"}]}}]}
             ],
             "toolConfig":{"tools":[
               {"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{}}}}},
               {"toolSpec":{"name":"lookup","inputSchema":{"json":{"type":"object","properties":{}}}}}]}}
            """),

        ["tool history with tool_choice none gets a synthesized toolConfig without choice"] = new(
            """
            {"model":"claude","tool_choice":"none","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "messages":[
              {"role":"user","content":"Weather?"},
              {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
              {"role":"tool","tool_call_id":"t1","content":"sunny"}
            ]}
            """,
            """
            {"messages":[
              {"role":"user","content":[{"text":"Weather?"}]},
              {"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"get_weather","input":{"city":"Rome"}}}]},
              {"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"sunny"}]}}]}
             ],
             "toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{}}}}}]}}
            """),

        ["tool_choice none without tool history sends no toolConfig"] = new(
            """{"model":"claude","tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"Hi"}]}""",
            """{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"""),

        ["tool_choice required becomes any"] = new(
            """{"model":"claude","tool_choice":"required","tools":[{"type":"function","function":{"name":"f","description":""}}],"messages":[{"role":"user","content":"Hi"}]}""",
            """
            {"messages":[{"role":"user","content":[{"text":"Hi"}]}],
             "toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object","properties":{}}}}}],"toolChoice":{"any":{}}}}
            """),

        ["tool_choice naming a function becomes tool"] = new(
            """{"model":"claude","tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"Hi"}]}""",
            """
            {"messages":[{"role":"user","content":[{"text":"Hi"}]}],
             "toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object","properties":{}}}}}],"toolChoice":{"tool":{"name":"f"}}}}
            """),

        ["tool_choice required without tools is rejected"] = new(
            """{"model":"claude","tool_choice":"required","messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "tool_choice", ErrorCode: "invalid_value"),

        ["tool_choice allowed_tools is rejected"] = new(
            """{"model":"claude","tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "tool_choice.type", ErrorCode: "unsupported_parameter"),

        ["custom tools are rejected"] = new(
            """{"model":"claude","tools":[{"type":"custom","custom":{"name":"grammar"}}],"messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "tools[0].type", ErrorCode: "unsupported_parameter"),

        ["invalid tool call arguments are rejected naming the parameter"] = new(
            """
            {"model":"claude","messages":[
              {"role":"system","content":"s"},
              {"role":"user","content":"Hi"},
              {"role":"assistant","content":"x"},
              {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"city\": \"Par"}}]}
            ]}
            """,
            ErrorParam: "messages[3].tool_calls[0].function.arguments", ErrorCode: "invalid_value", ErrorContains: "not valid JSON"),

        ["tool call arguments holding a lone surrogate escape are rejected, not a 500"] = new(
            """{"model":"claude","messages":[{"role":"user","content":"Hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"city\":\"\\ud800\"}"}}]}]}""",
            ErrorParam: "messages[1].tool_calls[0].function.arguments", ErrorCode: "invalid_value", ErrorContains: "not valid Unicode"),

        ["a number too large for a double is rejected, not a 500"] = new(
            """{"model":"claude","top_p":1e999999,"messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "top_p", ErrorCode: "invalid_value"),

        ["tool call arguments that are not an object are rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":"Hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"[1,2]"}}]}]}""",
            ErrorParam: "messages[1].tool_calls[0].function.arguments", ErrorCode: "invalid_value"),

        ["tool message without tool_call_id is rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":"Hi"},{"role":"tool","content":"x"}]}""",
            ErrorParam: "messages[1].tool_call_id", ErrorCode: "missing_required_parameter"),

        ["function role is rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":"Hi"},{"role":"function","name":"f","content":"x"}]}""",
            ErrorParam: "messages[1].role", ErrorCode: "unsupported_parameter"),

        ["data URL images become image blocks"] = new(
            """
            {"model":"claude","messages":[{"role":"user","content":[
              {"type":"text","text":"What are these?"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,PNG_BASE64","detail":"high"}},
              {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},
              {"type":"image_url","image_url":{"url":"data:image/jpg;base64,/9j/4AAQ"}},
              {"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lGODlh"}},
              {"type":"image_url","image_url":{"url":"DATA:IMAGE/WEBP;BASE64,UklGRg=="}}
            ]}]}
            """.Replace("PNG_BASE64", Png),
            """
            {"messages":[{"role":"user","content":[
              {"text":"What are these?"},
              {"image":{"format":"png","source":{"bytes":"PNG_BASE64"}}},
              {"image":{"format":"jpeg","source":{"bytes":"/9j/4AAQ"}}},
              {"image":{"format":"jpeg","source":{"bytes":"/9j/4AAQ"}}},
              {"image":{"format":"gif","source":{"bytes":"R0lGODlh"}}},
              {"image":{"format":"webp","source":{"bytes":"UklGRg=="}}}
            ]}]}
            """.Replace("PNG_BASE64", Png)),

        ["http image URL is rejected without fetching"] = new(
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://169.254.169.254/latest/meta-data/"}}]}]}""",
            ErrorParam: "messages[0].content[0].image_url.url", ErrorCode: "invalid_image_url", ErrorContains: "does not download images"),

        ["https image URL is rejected without fetching"] = new(
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}""",
            ErrorParam: "messages[0].content[1].image_url.url", ErrorCode: "invalid_image_url", ErrorContains: "base64 data URL"),

        ["unsupported image format is rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}""",
            ErrorParam: "messages[0].content[0].image_url.url", ErrorCode: "invalid_image_format", ErrorContains: "image/bmp"),

        ["non-base64 data URL is rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}]}""",
            ErrorParam: "messages[0].content[0].image_url.url", ErrorCode: "invalid_image_url"),

        ["invalid base64 image data is rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,not*base64!"}}]}]}""",
            ErrorParam: "messages[0].content[0].image_url.url", ErrorCode: "invalid_image_url"),

        ["audio content parts are rejected"] = new(
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}""",
            ErrorParam: "messages[0].content[0].type", ErrorCode: "unsupported_parameter"),

        ["stop string and inference parameters"] = new(
            """{"model":"claude","max_tokens":256,"temperature":0.2,"top_p":0.9,"stop":"END","messages":[{"role":"user","content":"Hi"}]}""",
            """{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":256,"temperature":0.2,"topP":0.9,"stopSequences":["END"]}}"""),

        ["stop list and max_completion_tokens"] = new(
            """{"model":"claude","max_completion_tokens":100,"max_tokens":5,"stop":["\n\n","Human:"],"messages":[{"role":"user","content":"Hi"}]}""",
            """{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":100,"stopSequences":["\n\n","Human:"]}}"""),

        ["max_tokens zero is rejected"] = new(
            """{"model":"claude","max_tokens":0,"messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "max_tokens", ErrorCode: "invalid_value"),

        ["stop with a number is rejected"] = new(
            """{"model":"claude","stop":["a",1],"messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "stop", ErrorCode: "invalid_value"),

        ["n above one is rejected"] = new(
            """{"model":"claude","n":2,"messages":[{"role":"user","content":"Hi"}]}""",
            ErrorParam: "n", ErrorCode: "unsupported_parameter", ErrorContains: "'n' must be 1"),

        ["harmless and default-valued parameters are accepted silently"] = new(
            """
            {"model":"claude","messages":[{"role":"user","content":"Hi"}],
             "user":"u-1","safety_identifier":"s","metadata":{"k":"v"},"store":false,"service_tier":"auto","stream":false,"stream_options":null,
             "prompt_cache_key":"k","n":1,"logprobs":false,"top_logprobs":null,"presence_penalty":0,"frequency_penalty":0.0,"logit_bias":{},
             "parallel_tool_calls":true,"response_format":{"type":"text"},"modalities":["text"],"seed":null}
            """,
            """{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"""),

        ["unsupported parameters are dropped when the deployment allows it"] = new(
            """
            {"model":"claude","messages":[{"role":"user","content":"Hi"}],"max_tokens":10,
             "n":3,"seed":7,"logprobs":true,"top_logprobs":2,"presence_penalty":0.5,"response_format":{"type":"json_object"},"x_vendor_flag":true}
            """,
            """{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":10}}""",
            DropUnsupportedParams: true),
    };
}
