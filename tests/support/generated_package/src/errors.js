/** Base error of the package; `code` is stable for programs to check. */
export class DataValidatorError extends Error {
  constructor(message, code) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
  }
}

/** A schema definition is malformed. */
export class SchemaError extends DataValidatorError {
  constructor(message, path = '') {
    super(path ? `${path}: ${message}` : message, 'INVALID_SCHEMA');
    this.path = path;
  }
}
