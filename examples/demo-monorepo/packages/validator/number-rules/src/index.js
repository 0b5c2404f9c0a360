'use strict';

function isInteger(value) {
  return Number.isInteger(value);
}

function isPositive(value) {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function inRange(min, max) {
  if (typeof min !== 'number' || typeof max !== 'number' || min > max) {
    throw new RangeError('inRange needs numbers with min <= max');
  }
  return (value) => typeof value === 'number' && value >= min && value <= max;
}

module.exports = { isInteger, isPositive, inRange };
