/** The schema type name of a value ('array' for arrays, 'null' for null). */
export function typeOf(value) {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

/** `parent.child` or `parent[0]` paths; the root is ''. */
export function joinPath(parent, key) {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}
