/**
 * @typedef {'string'|'number'|'boolean'|'object'|'array'} SchemaType
 * @typedef {{ type: SchemaType, required?: boolean, min?: number, max?: number,
 *   pattern?: string, properties?: Record<string, SchemaDefinition>,
 *   items?: SchemaDefinition }} SchemaDefinition
 * @typedef {{ path: string, code: string, message: string }} ValidationIssue
 * @typedef {{ valid: boolean, issues: ValidationIssue[] }} ValidationResult
 * @typedef {{ abortEarly?: boolean }} ValidatorConfig
 */
export const SCHEMA_TYPES = Object.freeze(['string', 'number', 'boolean', 'object', 'array']);
