// The official OpenAI JS SDK against a running LlmProxy: only baseURL and apiKey differ from calling OpenAI.
// Run by tests/compat/quickstart.sh with LLMPROXY_URL set to the gateway started by the README's command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = (process.env.LLMPROXY_URL ?? 'http://127.0.0.1:8080') + '/v1';
const client = new OpenAI({ baseURL, apiKey: 'sk-llmproxy-demo', maxRetries: 0 });

test('non-streaming chat completion', async () => {
  const completion = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello' }],
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, 'gpt-4o-mini');
  assert.ok(completion.choices[0].message.content.length > 0);
  assert.ok(completion.usage.total_tokens > 0);
});

test('streaming chat completion reassembles to the non-streamed answer', async () => {
  const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream me something' }] };
  const whole = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let content = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  assert.equal(content, whole.choices[0].message.content);
  assert.equal(finish, 'stop');
  assert.equal(usage.total_tokens, whole.usage.total_tokens);
});

test('tool calls pass through, streamed arguments reassemble to JSON', async () => {
  const tools = [{
    type: 'function',
    function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  }];
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools });
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'get_weather');
  JSON.parse(call.function.arguments);

  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools, stream: true });
  const args = {};
  for await (const chunk of stream) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      args[tc.index] = (args[tc.index] ?? '') + (tc.function?.arguments ?? '');
    }
  }
  assert.deepEqual(JSON.parse(args[0]), JSON.parse(call.function.arguments));
});

test('models list and errors keep OpenAI shapes', async () => {
  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));

  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
  );
  const wrongKey = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(
    wrongKey.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.code === 'invalid_api_key',
  );
});
