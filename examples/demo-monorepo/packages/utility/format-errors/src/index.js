'use strict';
const { validate } = require('@demo/schema');

function assertResult(result) {
  if (result === null || typeof result !== 'object' || !Array.isArray(result.errors)) {
    throw new TypeError('expected a validation result with an errors array');
  }
}

function formatErrors(result) {
  assertResult(result);
  if (result.errors.length === 0) {
    return 'valid';
  }
  return result.errors.map((error) => `- ${error.field}: ${error.message}`).join('\n');
}

function toProblem(result) {
  assertResult(result);
  return {
    status: result.errors.length === 0 ? 200 : 422,
    title: result.errors.length === 0 ? 'OK' : 'Validation failed',
    errors: Object.fromEntries(result.errors.map((error) => [error.field, error.message])),
  };
}

function validateAndFormat(schema, value) {
  const result = validate(schema, value);
  return { ...result, text: formatErrors(result) };
}

module.exports = { formatErrors, toProblem, validateAndFormat };
