// Copies the ES modules to dist/ and proves the entry point loads.
import { cpSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
cpSync('src', 'dist', { recursive: true });
const api = await import(new URL('../dist/index.js', import.meta.url));
if (typeof api.validate !== 'function') {
  throw new Error('dist/index.js does not export validate()');
}
console.log('built dist/');
