'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { isInteger, isPositive, inRange } = require('../src/index.js');

test('isInteger', () => {
  assert.equal(isInteger(3), true);
  assert.equal(isInteger(3.5), false);
  assert.equal(isInteger('3'), false);
});

test('isPositive rejects zero, negatives, infinities and non-numbers', () => {
  assert.equal(isPositive(0.1), true);
  assert.equal(isPositive(0), false);
  assert.equal(isPositive(-2), false);
  assert.equal(isPositive(Infinity), false);
  assert.equal(isPositive('1'), false);
});

test('inRange is inclusive and validates its bounds', () => {
  const percent = inRange(0, 100);
  assert.equal(percent(0), true);
  assert.equal(percent(100), true);
  assert.equal(percent(101), false);
  assert.equal(percent('50'), false);
  assert.throws(() => inRange(5, 1), RangeError);
  assert.throws(() => inRange('0', 1), RangeError);
});
