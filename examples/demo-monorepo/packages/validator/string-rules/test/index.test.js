'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { isNonEmptyString, isEmail, maxLength, matches } = require('../src/index.js');

test('isNonEmptyString accepts text and rejects blanks and non-strings', () => {
  assert.equal(isNonEmptyString('ada'), true);
  assert.equal(isNonEmptyString('   '), false);
  assert.equal(isNonEmptyString(''), false);
  assert.equal(isNonEmptyString(42), false);
});

test('isEmail checks the local@domain.tld shape', () => {
  assert.equal(isEmail('ada@example.com'), true);
  assert.equal(isEmail('ada@example'), false);
  assert.equal(isEmail('a da@example.com'), false);
  assert.equal(isEmail(null), false);
});

test('maxLength builds a length rule and rejects bad limits', () => {
  const rule = maxLength(3);
  assert.equal(rule('abc'), true);
  assert.equal(rule('abcd'), false);
  assert.equal(rule(123), false);
  assert.throws(() => maxLength(-1), RangeError);
  assert.throws(() => maxLength(1.5), RangeError);
});

test('matches builds a pattern rule and rejects non-RegExp patterns', () => {
  const slug = matches(/^[a-z-]+$/);
  assert.equal(slug('hello-world'), true);
  assert.equal(slug('Hello'), false);
  assert.equal(slug(undefined), false);
  assert.throws(() => matches('abc'), TypeError);
});
