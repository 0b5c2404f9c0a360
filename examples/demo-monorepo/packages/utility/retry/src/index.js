'use strict';
const { isInteger, isPositive } = require('@demo/number-rules');

function backoffDelays({ attempts = 3, baseMs = 100, factor = 2, maxMs = 10000 } = {}) {
  if (!isInteger(attempts) || attempts < 1) {
    throw new RangeError('attempts must be a positive integer');
  }
  if (!isPositive(baseMs) || !isPositive(factor) || !isPositive(maxMs)) {
    throw new RangeError('baseMs, factor and maxMs must be positive numbers');
  }
  const delays = [];
  for (let retry = 1; retry < attempts; retry += 1) {
    delays.push(Math.min(maxMs, baseMs * factor ** (retry - 1)));
  }
  return delays;
}

const realSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function retry(operation, options = {}) {
  const delays = backoffDelays(options);
  const sleep = options.sleep || realSleep;
  let lastError;
  for (let attempt = 0; attempt <= delays.length; attempt += 1) {
    try {
      return await operation(attempt + 1);
    } catch (error) {
      lastError = error;
      if (options.retryable && !options.retryable(error)) {
        break;
      }
      if (attempt < delays.length) {
        await sleep(delays[attempt]);
      }
    }
  }
  throw lastError;
}

module.exports = { backoffDelays, retry };
