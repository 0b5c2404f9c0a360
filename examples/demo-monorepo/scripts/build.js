'use strict';
// Build step shared by every package: syntax-check each source file with `node --check`,
// then copy src/ to dist/. Exits non-zero (naming the file) on the first broken file.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function sourceFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...sourceFiles(full));
    } else if (/\.[cm]?js$/.test(entry.name)) {
      out.push(full);
    }
  }
  return out.sort();
}

const pkgDir = process.cwd();
const srcDir = path.join(pkgDir, 'src');
const distDir = path.join(pkgDir, 'dist');
if (!fs.existsSync(srcDir)) {
  process.stderr.write(`build: ${srcDir} does not exist\n`);
  process.exit(1);
}
const files = sourceFiles(srcDir);
for (const file of files) {
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
  if (check.status !== 0) {
    process.stderr.write(`build: ${path.relative(pkgDir, file)} has a syntax error\n${check.stderr}`);
    process.exit(1);
  }
}
fs.rmSync(distDir, { recursive: true, force: true });
fs.cpSync(srcDir, distDir, { recursive: true });
process.stdout.write(`build: checked and copied ${files.length} file(s) to dist/\n`);
