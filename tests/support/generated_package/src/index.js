export { validate, isValid } from './validator.js';
export { parseSchema } from './schema-parser.js';
export { formatIssues } from './error-formatter.js';
export { DataValidatorError, SchemaError } from './errors.js';
export { SCHEMA_TYPES } from './types.js';
