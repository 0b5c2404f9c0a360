'use strict';
// Test step shared by every package: node's built-in test runner with coverage as lcov.
// node 20 reports coverage for every file a test loaded (test files and the dist/ of
// workspace dependencies included), so the raw report is filtered down to this package's
// own src/ files: coverage/lcov.info is the coverage of this package alone.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkgDir = process.cwd();
const coverageDir = path.join(pkgDir, 'coverage');
const rawReport = path.join(coverageDir, 'lcov-all.info');
fs.mkdirSync(coverageDir, { recursive: true });

const run = spawnSync(
  process.execPath,
  [
    '--test',
    '--experimental-test-coverage',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=lcov',
    `--test-reporter-destination=${rawReport}`,
  ],
  { stdio: 'inherit' },
);

function ownSourceRecords(lcov) {
  const srcDir = path.join(pkgDir, 'src') + path.sep;
  return lcov
    .split('end_of_record')
    .map((record) => record.trim())
    .filter((record) => {
      const sf = /^SF:(.*)$/m.exec(record);
      return sf !== null && path.resolve(pkgDir, sf[1]).startsWith(srcDir);
    })
    .map((record) => `${record}\nend_of_record\n`)
    .join('');
}

if (fs.existsSync(rawReport)) {
  fs.writeFileSync(path.join(coverageDir, 'lcov.info'), ownSourceRecords(fs.readFileSync(rawReport, 'utf8')));
}
process.exit(run.status === null ? 1 : run.status);
