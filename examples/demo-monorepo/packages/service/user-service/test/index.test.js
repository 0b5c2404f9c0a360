'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { createUserService, memoryStore, ValidationError } = require('../src/index.js');

test('register validates, stores and returns the user', async () => {
  const service = createUserService();
  const ada = await service.register({ name: 'Ada', email: 'ada@example.com', age: 36 });
  assert.deepEqual(ada, { id: 1, name: 'Ada', email: 'ada@example.com', age: 36 });
  const bob = await service.register({ name: 'Bob', email: 'bob@example.com' });
  assert.equal(bob.age, null);
  assert.deepEqual(await service.get(1), ada);
  assert.equal((await service.list()).length, 2);
});

test('invalid input raises a ValidationError carrying an HTTP problem', async () => {
  const service = createUserService();
  await assert.rejects(service.register({ name: '', email: 'nope', age: 5 }), (error) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.problem.status, 422);
    assert.deepEqual(Object.keys(error.problem.errors), ['name', 'email', 'age']);
    assert.match(error.message, /- email: email must look like/);
    return true;
  });
});

test('duplicate emails and unknown ids are rejected', async () => {
  const service = createUserService();
  await service.register({ name: 'Ada', email: 'ada@example.com' });
  await assert.rejects(service.register({ name: 'Ada 2', email: 'ada@example.com' }), /already exists/);
  await assert.rejects(service.get(99), /no user with id 99/);
});

test('a transiently failing store is retried through @demo/retry', async () => {
  const inner = memoryStore();
  let failures = 1;
  const flaky = {
    ...inner,
    set: async (key, value) => {
      if (failures > 0) {
        failures -= 1;
        throw new Error('store unavailable');
      }
      return inner.set(key, value);
    },
  };
  const service = createUserService({ store: flaky, retryOptions: { sleep: async () => {} } });
  const user = await service.register({ name: 'Cy', email: 'cy@example.com' });
  assert.deepEqual(await service.get(user.id), user);
});
