import { SCHEMA_TYPES } from './types.js';
import { SchemaError } from './errors.js';
import { joinPath } from './utils.js';

/** Check a schema definition before use; returns it unchanged or throws SchemaError. */
export function parseSchema(definition, path = '') {
  if (definition === null || typeof definition !== 'object') {
    throw new SchemaError('a schema must be an object', path);
  }
  if (!SCHEMA_TYPES.includes(definition.type)) {
    throw new SchemaError(`unknown type '${definition.type}'`, path);
  }
  if (definition.min !== undefined && definition.max !== undefined && definition.min > definition.max) {
    throw new SchemaError('min is greater than max', path);
  }
  for (const [key, child] of Object.entries(definition.properties ?? {})) {
    parseSchema(child, joinPath(path, key));
  }
  if (definition.items !== undefined) parseSchema(definition.items, `${path}[]`);
  return definition;
}
