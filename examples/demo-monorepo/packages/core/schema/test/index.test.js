'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { rules, defineSchema, validate } = require('../src/index.js');

const user = defineSchema({
  name: { rules: [rules.text, rules.maxLength(20)], message: 'name must be 1-20 characters' },
  email: { rules: rules.email },
  age: { rules: [rules.integer, rules.inRange(0, 150)], required: false },
});

test('a valid value has no errors', () => {
  assert.deepEqual(validate(user, { name: 'Ada', email: 'ada@example.com', age: 36 }), {
    valid: true,
    errors: [],
  });
});

test('rules from the workspace validator packages are applied', () => {
  const result = validate(user, { name: '', email: 'nope', age: 3.5 });
  assert.equal(result.valid, false);
  assert.deepEqual(
    result.errors.map((error) => error.field),
    ['name', 'email', 'age'],
  );
  assert.equal(result.errors[0].message, 'name must be 1-20 characters');
  assert.equal(result.errors[1].message, 'email is invalid');
});

test('required fields are reported, optional ones are not', () => {
  assert.deepEqual(validate(user, {}).errors, [
    { field: 'name', message: 'name is required' },
    { field: 'email', message: 'email is required' },
  ]);
  assert.equal(validate(user, null).valid, false);
});

test('positive is available as a named rule', () => {
  const price = defineSchema({ amount: { rules: rules.positive } });
  assert.equal(validate(price, { amount: 2 }).valid, true);
  assert.equal(validate(price, { amount: -2 }).valid, false);
});

test('defineSchema rejects bad definitions', () => {
  assert.throws(() => defineSchema(null), TypeError);
  assert.throws(() => defineSchema([]), TypeError);
  assert.throws(() => defineSchema({ x: { rules: [] } }), /at least one rule/);
  assert.throws(() => defineSchema({ x: { rules: 'text' } }), TypeError);
});
