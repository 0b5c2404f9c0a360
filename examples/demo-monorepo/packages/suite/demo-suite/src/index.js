'use strict';
const strings = require('@demo/string-rules');
const numbers = require('@demo/number-rules');
const schema = require('@demo/schema');
const format = require('@demo/format-errors');
const retry = require('@demo/retry');
const users = require('@demo/user-service');

const packages = [
  '@demo/string-rules',
  '@demo/number-rules',
  '@demo/schema',
  '@demo/format-errors',
  '@demo/retry',
  '@demo/user-service',
];

function describeSuite() {
  return `@demo/suite bundles ${packages.length} packages: ${packages.join(', ')}`;
}

module.exports = { strings, numbers, schema, format, retry, users, packages, describeSuite };
