'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { backoffDelays, retry } = require('../src/index.js');

test('backoffDelays grows exponentially and is capped', () => {
  assert.deepEqual(backoffDelays({ attempts: 5, baseMs: 100, factor: 2, maxMs: 500 }), [100, 200, 400, 500]);
  assert.deepEqual(backoffDelays(), [100, 200]);
  assert.deepEqual(backoffDelays({ attempts: 1 }), []);
});

test('backoffDelays validates its options with the workspace number rules', () => {
  assert.throws(() => backoffDelays({ attempts: 0 }), RangeError);
  assert.throws(() => backoffDelays({ attempts: 2.5 }), RangeError);
  assert.throws(() => backoffDelays({ baseMs: -1 }), /positive numbers/);
});

test('retry returns the first success and sleeps between attempts', async () => {
  const slept = [];
  let calls = 0;
  const value = await retry(
    async (attempt) => {
      calls += 1;
      if (attempt < 3) {
        throw new Error(`fail ${attempt}`);
      }
      return 'ok';
    },
    { attempts: 4, baseMs: 10, sleep: async (ms) => slept.push(ms) },
  );
  assert.equal(value, 'ok');
  assert.equal(calls, 3);
  assert.deepEqual(slept, [10, 20]);
});

test('retry rethrows the last error when attempts run out', async () => {
  await assert.rejects(
    retry(async (attempt) => { throw new Error(`fail ${attempt}`); }, { attempts: 2, baseMs: 1 }),
    /fail 2/,
  );
});

test('retry stops at once on a non-retryable error', async () => {
  let calls = 0;
  await assert.rejects(
    retry(
      async () => {
        calls += 1;
        throw new TypeError('fatal');
      },
      { attempts: 5, retryable: (error) => !(error instanceof TypeError), sleep: async () => {} },
    ),
    TypeError,
  );
  assert.equal(calls, 1);
});
