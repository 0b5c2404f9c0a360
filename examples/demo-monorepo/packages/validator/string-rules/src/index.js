'use strict';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function isNonEmptyString(value) {
  return typeof value === 'string' && value.trim().length > 0;
}

function isEmail(value) {
  return typeof value === 'string' && EMAIL.test(value);
}

function maxLength(limit) {
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError('maxLength needs a non-negative integer limit');
  }
  return (value) => typeof value === 'string' && value.length <= limit;
}

function matches(pattern) {
  if (!(pattern instanceof RegExp)) {
    throw new TypeError('matches needs a RegExp');
  }
  return (value) => typeof value === 'string' && pattern.test(value);
}

module.exports = { isNonEmptyString, isEmail, maxLength, matches };
