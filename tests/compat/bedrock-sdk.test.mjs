// AWS's own Bedrock Runtime client (SigV4 signer, REST-JSON serializer, event-stream decoder, error parser) against
// the simulator's Bedrock endpoints: the proof that the simulator speaks the real wire protocol.
// Run by tests/compat/bedrock-sdk.sh with BEDROCK_SIM_URL set to a standalone simulator.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const endpoint = process.env.BEDROCK_SIM_URL ?? 'http://127.0.0.1:8091';
const credentials = { accessKeyId: 'AKIDSIMULATOR', secretAccessKey: 'simulator-secret' };
const modelId = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const profileArn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0';

// HTTP/1.1 through Node's http module, one attempt so that injected faults reach the test instead of a retry.
const makeClient = (overrides = {}) => new BedrockRuntimeClient({
  region: 'us-east-1',
  endpoint,
  credentials,
  requestHandler: new NodeHttpHandler(),
  maxAttempts: 1,
  ...overrides,
});
const client = makeClient();

const user = (text) => ({ role: 'user', content: [{ text }] });
const weatherTools = {
  tools: [
    { toolSpec: { name: 'get_weather', description: 'Weather in a city', inputSchema: { json: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer' } }, required: ['city'] } } } },
    { toolSpec: { name: 'get_time', inputSchema: { json: { type: 'object', properties: { timezone: { type: 'string' } } } } } },
  ],
};

const control = (path, init) => fetch(new URL(path, endpoint), init);
const armFault = async (fault) => {
  const response = await control('/_sim/faults', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fault) });
  assert.equal(response.status, 200, await response.text());
};
afterEach(async () => { await control('/_sim/faults', { method: 'DELETE' }); });

/** Reads a ConverseStream to its end: the events in order, the reassembled text and tool inputs, stop reason and usage. */
async function collect(stream) {
  const result = { types: [], text: '', toolUses: {}, stopReason: null, usage: null };
  for await (const event of stream) {
    const [type] = Object.keys(event).filter((k) => event[k] !== undefined);
    result.types.push(type);
    if (event.contentBlockStart?.start?.toolUse) {
      const { toolUseId, name } = event.contentBlockStart.start.toolUse;
      result.toolUses[event.contentBlockStart.contentBlockIndex] = { toolUseId, name, input: '', fragments: 0 };
    }
    if (event.contentBlockDelta) {
      const { delta, contentBlockIndex } = event.contentBlockDelta;
      if (delta.text !== undefined) result.text += delta.text;
      if (delta.toolUse) {
        result.toolUses[contentBlockIndex].input += delta.toolUse.input;
        result.toolUses[contentBlockIndex].fragments++;
      }
    }
    if (event.messageStop) result.stopReason = event.messageStop.stopReason;
    if (event.metadata) result.usage = event.metadata.usage;
  }
  return result;
}

test('Converse: text reply, end_turn, usage, request id', async () => {
  const response = await client.send(new ConverseCommand({ modelId, messages: [user('Hello there')] }));
  assert.deepEqual(response.output.message, { role: 'assistant', content: [{ text: 'Simulated reply to: Hello there' }] });
  assert.equal(response.stopReason, 'end_turn');
  assert.deepEqual(response.usage, { inputTokens: 5, outputTokens: 5, totalTokens: 10 });
  assert.equal(typeof response.metrics.latencyMs, 'number');
  assert.match(response.$metadata.requestId, /^[0-9a-f-]{36}$/);
});

test('Converse: an inference-profile ARN model id routes, and reaches the simulator percent-encoded', async () => {
  await control('/_sim/requests', { method: 'DELETE' });
  const response = await client.send(new ConverseCommand({ modelId: profileArn, messages: [user('Hello there')] }));
  assert.equal(response.output.message.content[0].text, 'Simulated reply to: Hello there');
  const recorded = await (await control('/_sim/requests')).json();
  assert.equal(recorded.count, 1);
  assert.match(recorded.requests[0].headers.Authorization, /^AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
  assert.equal(recorded.requests[0].path, `/model/${encodeURIComponent(profileArn)}/converse`);
});

test('Converse: maxTokens cuts the reply with max_tokens', async () => {
  const response = await client.send(new ConverseCommand({ modelId, messages: [user('Hello there')], inferenceConfig: { maxTokens: 2 } }));
  assert.equal(response.output.message.content[0].text, 'Simulated reply');
  assert.equal(response.stopReason, 'max_tokens');
  assert.equal(response.usage.outputTokens, 2);
});

test('Converse: a stop sequence cuts the reply with stop_sequence', async () => {
  const response = await client.send(new ConverseCommand({ modelId, messages: [user('Hello there')], inferenceConfig: { stopSequences: ['there'], temperature: 0.5, topP: 0.9 } }));
  assert.equal(response.output.message.content[0].text, 'Simulated reply to: Hello');
  assert.equal(response.stopReason, 'stop_sequence');
});

test('Converse: tool use round trip', async () => {
  const first = await client.send(new ConverseCommand({ modelId, messages: [user('What is the weather in Paris?')], toolConfig: weatherTools }));
  assert.equal(first.stopReason, 'tool_use');
  const [block] = first.output.message.content;
  assert.equal(block.toolUse.name, 'get_weather');
  assert.match(block.toolUse.toolUseId, /^tooluse_[A-Za-z0-9]{22}$/);
  assert.deepEqual(block.toolUse.input, { city: 'sample', unit: 'celsius', days: 1 });

  const second = await client.send(new ConverseCommand({
    modelId,
    toolConfig: weatherTools,
    messages: [
      user('What is the weather in Paris?'),
      first.output.message,
      { role: 'user', content: [{ toolResult: { toolUseId: block.toolUse.toolUseId, content: [{ text: '22C and sunny' }] } }] },
    ],
  }));
  assert.equal(second.stopReason, 'end_turn');
  assert.equal(second.output.message.content[0].text, 'Simulated reply using tool results: 22C and sunny');
});

test('Converse: "parallel" asks for every tool, toolChoice names one', async () => {
  const parallel = await client.send(new ConverseCommand({ modelId, messages: [user('Use the tools in parallel')], toolConfig: weatherTools }));
  assert.deepEqual(parallel.output.message.content.map((b) => b.toolUse.name), ['get_weather', 'get_time']);

  const named = await client.send(new ConverseCommand({ modelId, messages: [user('What time is it?')], toolConfig: { ...weatherTools, toolChoice: { tool: { name: 'get_time' } } } }));
  assert.deepEqual(named.output.message.content.map((b) => b.toolUse.name), ['get_time']);
});

test('Converse: [[guardrail]] in the prompt gives guardrail_intervened', async () => {
  const response = await client.send(new ConverseCommand({ modelId, messages: [user('Tell me a secret [[guardrail]]')] }));
  assert.equal(response.stopReason, 'guardrail_intervened');
});

test('Converse answers as the OpenAI endpoint does: same text, same token counts', async () => {
  const bedrock = await client.send(new ConverseCommand({ modelId, system: [{ text: 'Be brief.' }], messages: [user('Compare these two answers')] }));
  const openai = await (await control('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Compare these two answers' }] }),
  })).json();
  assert.equal(bedrock.output.message.content[0].text, openai.choices[0].message.content);
  assert.deepEqual(
    [bedrock.usage.inputTokens, bedrock.usage.outputTokens, bedrock.usage.totalTokens],
    [openai.usage.prompt_tokens, openai.usage.completion_tokens, openai.usage.total_tokens]);
});

test('ConverseStream: events in order, text reassembles to the Converse text, metadata usage', async () => {
  const request = { modelId: profileArn, messages: [user('Stream me something nice')] };
  const whole = await client.send(new ConverseCommand(request));
  const response = await client.send(new ConverseStreamCommand(request));
  const streamed = await collect(response.stream);
  const deltas = streamed.types.filter((t) => t === 'contentBlockDelta').length;
  assert.ok(deltas > 1);
  assert.deepEqual(streamed.types, ['messageStart', ...Array(deltas).fill('contentBlockDelta'), 'contentBlockStop', 'messageStop', 'metadata']);
  assert.equal(streamed.text, whole.output.message.content[0].text);
  assert.equal(streamed.stopReason, 'end_turn');
  assert.deepEqual(streamed.usage, whole.usage);
});

test('ConverseStream: toolUse input fragments reassemble to the Converse input', async () => {
  const request = { modelId, messages: [user('Weather and time, in parallel please')], toolConfig: weatherTools };
  const whole = await client.send(new ConverseCommand(request));
  const streamed = await collect((await client.send(new ConverseStreamCommand(request))).stream);
  assert.equal(streamed.stopReason, 'tool_use');
  const uses = Object.values(streamed.toolUses);
  assert.deepEqual(uses.map((u) => u.name), whole.output.message.content.map((b) => b.toolUse.name));
  for (const [index, use] of uses.entries()) {
    assert.ok(use.fragments > 1, 'the input spans several deltas');
    assert.match(use.toolUseId, /^tooluse_/);
    assert.deepEqual(JSON.parse(use.input), whole.output.message.content[index].toolUse.input);
  }
  assert.deepEqual(streamed.usage, whole.usage);
});

test('a wrong secret is rejected: InvalidSignatureException, 403', async () => {
  const wrong = makeClient({ credentials: { ...credentials, secretAccessKey: 'not-the-secret' } });
  await assert.rejects(wrong.send(new ConverseCommand({ modelId, messages: [user('hi')] })), (error) => {
    assert.equal(error.name, 'InvalidSignatureException');
    assert.equal(error.$metadata.httpStatusCode, 403);
    assert.match(error.message, /^The request signature we calculated does not match the signature you provided/);
    return true;
  });
});

test('an unknown access key is rejected: UnrecognizedClientException, 403', async () => {
  const stranger = makeClient({ credentials: { accessKeyId: 'AKIDSTRANGER', secretAccessKey: 'x' } });
  await assert.rejects(stranger.send(new ConverseCommand({ modelId, messages: [user('hi')] })), (error) => {
    assert.equal(error.name, 'UnrecognizedClientException');
    assert.equal(error.$metadata.httpStatusCode, 403);
    return true;
  });
});

test('a signature ten minutes old is rejected: Signature expired', async () => {
  const late = makeClient({ systemClockOffset: -10 * 60 * 1000 });
  await assert.rejects(late.send(new ConverseCommand({ modelId, messages: [user('hi')] })), (error) => {
    assert.equal(error.name, 'InvalidSignatureException');
    assert.match(error.message, /^Signature expired: \d{8}T\d{6}Z is now earlier than/);
    return true;
  });
});

test('a session token is accepted when signed', async () => {
  const session = makeClient({ credentials: { ...credentials, sessionToken: 'simulated-session-token' } });
  const response = await session.send(new ConverseCommand({ modelId, messages: [user('hi')] }));
  assert.equal(response.stopReason, 'end_turn');
});

test('validation: an assistant message first is a ValidationException', async () => {
  await assert.rejects(
    client.send(new ConverseCommand({ modelId, messages: [{ role: 'assistant', content: [{ text: 'Hi' }] }, user('hi')] })),
    (error) => {
      assert.equal(error.name, 'ValidationException');
      assert.equal(error.$metadata.httpStatusCode, 400);
      assert.equal(error.message, 'A conversation must start with a user message. Try again with a conversation that starts with a user message.');
      return true;
    });
});

test('validation: toolUse without toolConfig, and an out-of-range temperature', async () => {
  const toolUse = { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather', input: {} } };
  await assert.rejects(
    client.send(new ConverseCommand({ modelId, messages: [user('hi'), { role: 'assistant', content: [toolUse] }, { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_1', content: [{ text: 'x' }] } }] }] })),
    { name: 'ValidationException', message: 'The toolConfig field must be defined when using toolUse and toolResult content blocks.' });
  await assert.rejects(
    client.send(new ConverseCommand({ modelId, messages: [user('hi')], inferenceConfig: { temperature: 1.5 } })),
    { name: 'ValidationException', message: "1 validation error detected: Value '1.5' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1" });
});

test('an unknown model is a ResourceNotFoundException, 404', async () => {
  await assert.rejects(client.send(new ConverseCommand({ modelId: 'unknown.model-v1', messages: [user('hi')] })), (error) => {
    assert.equal(error.name, 'ResourceNotFoundException');
    assert.equal(error.$metadata.httpStatusCode, 404);
    return true;
  });
});

test('a throttling fault is a ThrottlingException; with retries the SDK gets through', async () => {
  await armFault({ kind: 'status', statusCode: 429, retryAfterSeconds: 1, count: 1 });
  await assert.rejects(client.send(new ConverseCommand({ modelId, messages: [user('hi')] })), (error) => {
    assert.equal(error.name, 'ThrottlingException');
    assert.equal(error.$metadata.httpStatusCode, 429);
    return true;
  });

  await armFault({ kind: 'status', statusCode: 503, count: 1 });
  const retrying = makeClient({ maxAttempts: 2 });
  const response = await retrying.send(new ConverseCommand({ modelId, messages: [user('hi')] }));
  assert.equal(response.$metadata.attempts, 2);
  assert.equal(response.stopReason, 'end_turn');
});

test('a mid-stream exception event makes the stream iteration throw', async () => {
  await armFault({ kind: 'midStreamError', afterChunks: 2, count: 1 });
  const received = [];
  const response = await client.send(new ConverseStreamCommand({ modelId, messages: [user('Stream me something nice')] }));
  await assert.rejects((async () => { for await (const event of response.stream) received.push(Object.keys(event)[0]); })(), { name: 'ModelStreamErrorException' });
  assert.deepEqual(received, ['messageStart', 'contentBlockDelta']);

  await armFault({ kind: 'midStreamError', afterChunks: 3, statusCode: 429, count: 1 });
  const throttled = await client.send(new ConverseStreamCommand({ modelId, messages: [user('Stream me something nice')] }));
  await assert.rejects(collect(throttled.stream), { name: 'ThrottlingException' });
});
