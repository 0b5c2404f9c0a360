import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate, isValid, parseSchema, formatIssues, SchemaError } from '../src/index.js';

const user = {
  type: 'object',
  properties: {
    name: { type: 'string', required: true, min: 2, max: 10 },
    email: { type: 'string', pattern: '^[^@]+@[^@]+$' },
    age: { type: 'number', min: 0, max: 150 },
    tags: { type: 'array', items: { type: 'string' } },
  },
};

test('a valid object has no issues', () => {
  const r = validate(user, { name: 'Ada', email: 'ada@example.com', age: 36, tags: ['x'] });
  assert.deepEqual(r, { valid: true, issues: [] });
  assert.equal(isValid(user, { name: 'Ada' }), true);
});

test('min and max are inclusive', () => {
  assert.equal(isValid({ type: 'number', min: 0, max: 150 }, 0), true);
  assert.equal(isValid({ type: 'number', min: 0, max: 150 }, 150), true);
  assert.equal(isValid({ type: 'string', min: 2 }, 'ab'), true);
  assert.equal(isValid({ type: 'number', min: 0 }, -1), false);
  assert.equal(isValid({ type: 'number', max: 1 }, 2), false);
});

test('issues carry nested paths and codes', () => {
  const r = validate(user, { email: 'nope', age: 'old', tags: ['a', 3] });
  assert.equal(r.valid, false);
  assert.deepEqual(r.issues.map((i) => `${i.path}:${i.code}`),
    ['name:required', 'email:pattern', 'age:type', 'tags[1]:type']);
});

test('abortEarly keeps the first issue only', () => {
  const r = validate(user, { email: 'nope', age: 'old' }, { abortEarly: true });
  assert.equal(r.issues.length, 1);
});

test('null is reported as its own type', () => {
  assert.equal(validate({ type: 'string' }, null).valid, true);
  assert.equal(validate({ type: 'array' }, {}).issues[0].message, 'expected array, got object');
});

test('parseSchema rejects malformed schemas', () => {
  assert.throws(() => parseSchema(null), SchemaError);
  assert.throws(() => parseSchema({ type: 'date' }), /unknown type 'date'/);
  assert.throws(() => parseSchema({ type: 'number', min: 3, max: 1 }), /min is greater than max/);
  assert.throws(() => parseSchema({ type: 'object', properties: { a: { type: 'x' } } }),
    (e) => e.code === 'INVALID_SCHEMA' && e.path === 'a');
  assert.throws(() => parseSchema({ type: 'array', items: 5 }), /\[\]: a schema/);
});

test('formatIssues renders one line per issue', () => {
  const text = formatIssues([{ path: '', code: 'type', message: 'expected string, got number' },
    { path: 'a.b', code: 'min', message: 'must be at least 1' }]);
  assert.equal(text, '(root): expected string, got number [type]\na.b: must be at least 1 [min]');
});
