'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const suite = require('../src/index.js');

test('the suite re-exports every demo package', () => {
  assert.equal(typeof suite.strings.isEmail, 'function');
  assert.equal(typeof suite.numbers.inRange, 'function');
  assert.equal(typeof suite.schema.validate, 'function');
  assert.equal(typeof suite.format.formatErrors, 'function');
  assert.equal(typeof suite.retry.retry, 'function');
  assert.equal(typeof suite.users.createUserService, 'function');
  assert.match(suite.describeSuite(), /bundles 6 packages: @demo\/string-rules/);
});

test('the packages work together end to end', async () => {
  const service = suite.users.createUserService();
  const user = await service.register({ name: 'Grace', email: 'grace@example.com', age: 85 });
  assert.equal(user.id, 1);
  await assert.rejects(service.register({ name: 'x', email: 'bad' }), suite.users.ValidationError);
});
