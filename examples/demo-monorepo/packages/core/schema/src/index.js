'use strict';
const strings = require('@demo/string-rules');
const numbers = require('@demo/number-rules');

// Named rules a schema can refer to; each maps a value to true (valid) or false.
const rules = {
  text: strings.isNonEmptyString,
  email: strings.isEmail,
  integer: numbers.isInteger,
  positive: numbers.isPositive,
  maxLength: strings.maxLength,
  inRange: numbers.inRange,
};

function defineSchema(fields) {
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
    throw new TypeError('defineSchema needs an object of field definitions');
  }
  const schema = {};
  for (const [field, definition] of Object.entries(fields)) {
    const checks = Array.isArray(definition.rules) ? definition.rules : [definition.rules];
    if (checks.length === 0 || checks.some((check) => typeof check !== 'function')) {
      throw new TypeError(`field "${field}" needs at least one rule function`);
    }
    schema[field] = {
      rules: checks,
      required: definition.required !== false,
      message: definition.message || `${field} is invalid`,
    };
  }
  return Object.freeze(schema);
}

function validate(schema, value) {
  const errors = [];
  const input = value !== null && typeof value === 'object' ? value : {};
  for (const [field, definition] of Object.entries(schema)) {
    if (input[field] === undefined) {
      if (definition.required) {
        errors.push({ field, message: `${field} is required` });
      }
      continue;
    }
    if (!definition.rules.every((check) => check(input[field]))) {
      errors.push({ field, message: definition.message });
    }
  }
  return { valid: errors.length === 0, errors };
}

module.exports = { rules, defineSchema, validate };
