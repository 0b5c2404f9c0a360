// Runs node:test with coverage written to coverage/lcov.info.
import { mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

mkdirSync('coverage', { recursive: true });
const result = spawnSync(process.execPath, [
  '--test', '--experimental-test-coverage',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=lcov', '--test-reporter-destination=coverage/lcov.info',
  'test/',
], { stdio: 'inherit' });
process.exit(result.status ?? 1);
