'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { defineSchema, rules } = require('@demo/schema');
const { formatErrors, toProblem, validateAndFormat } = require('../src/index.js');

const contact = defineSchema({ email: { rules: rules.email, message: 'email looks wrong' } });

test('formatErrors lists one line per error', () => {
  const text = formatErrors({ errors: [{ field: 'a', message: 'bad' }, { field: 'b', message: 'worse' }] });
  assert.equal(text, '- a: bad\n- b: worse');
  assert.equal(formatErrors({ errors: [] }), 'valid');
});

test('toProblem maps results to an HTTP problem', () => {
  assert.deepEqual(toProblem({ errors: [] }), { status: 200, title: 'OK', errors: {} });
  assert.deepEqual(toProblem({ errors: [{ field: 'email', message: 'email looks wrong' }] }), {
    status: 422,
    title: 'Validation failed',
    errors: { email: 'email looks wrong' },
  });
});

test('validateAndFormat uses the workspace schema package', () => {
  assert.equal(validateAndFormat(contact, { email: 'x' }).text, '- email: email looks wrong');
  assert.equal(validateAndFormat(contact, { email: 'x@y.io' }).valid, true);
});

test('non-results are rejected', () => {
  assert.throws(() => formatErrors(null), TypeError);
  assert.throws(() => toProblem({}), TypeError);
});
