import { parseSchema } from './schema-parser.js';
import { joinPath, typeOf } from './utils.js';

function sizeOf(value) {
  return typeof value === 'number' ? value : value.length;
}

function check(schema, value, path, issues, config) {
  if (value === undefined || value === null) {
    if (schema.required) issues.push({ path, code: 'required', message: 'is required' });
    return;
  }
  const actual = typeOf(value);
  if (actual !== schema.type) {
    issues.push({ path, code: 'type', message: `expected ${schema.type}, got ${actual}` });
    return;
  }
  if (schema.min !== undefined && sizeOf(value) < schema.min) {
    issues.push({ path, code: 'min', message: `must be at least ${schema.min}` });
  }
  if (schema.max !== undefined && sizeOf(value) > schema.max) {
    issues.push({ path, code: 'max', message: `must be at most ${schema.max}` });
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
    issues.push({ path, code: 'pattern', message: `must match ${schema.pattern}` });
  }
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    if (config.abortEarly && issues.length) return;
    check(child, value[key], joinPath(path, key), issues, config);
  }
  if (schema.items !== undefined) {
    value.forEach((item, i) => check(schema.items, item, joinPath(path, i), issues, config));
  }
}

/** Validate `value` against `schema`; every problem is reported with its path. */
export function validate(schema, value, config = {}) {
  parseSchema(schema);
  const issues = [];
  check(schema, value, '', issues, config);
  const kept = config.abortEarly ? issues.slice(0, 1) : issues;
  return { valid: kept.length === 0, issues: kept };
}

/** Shorthand for `validate(schema, value).valid`. */
export function isValid(schema, value) {
  return validate(schema, value).valid;
}
