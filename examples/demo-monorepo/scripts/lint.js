'use strict';
// A tiny linter so quality checks run for real: no console.log in src/, no trailing
// whitespace, no tabs, 'use strict' first, newline at end of file. Lists every problem as
// file:line: message and exits 1 when there is any.
const fs = require('node:fs');
const path = require('node:path');

function jsFiles(dir) {
  if (!fs.existsSync(dir)) {
    return [];
  }
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...jsFiles(full));
    } else if (entry.name.endsWith('.js')) {
      out.push(full);
    }
  }
  return out.sort();
}

const pkgDir = process.cwd();
const problems = [];
for (const file of [...jsFiles(path.join(pkgDir, 'src')), ...jsFiles(path.join(pkgDir, 'test'))]) {
  const rel = path.relative(pkgDir, file);
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[0] !== "'use strict';") {
    problems.push(`${rel}:1: first line must be 'use strict';`);
  }
  if (!text.endsWith('\n')) {
    problems.push(`${rel}:${lines.length}: missing newline at end of file`);
  }
  lines.forEach((line, index) => {
    if (/[ \t]+$/.test(line)) {
      problems.push(`${rel}:${index + 1}: trailing whitespace`);
    }
    if (line.includes('\t')) {
      problems.push(`${rel}:${index + 1}: tab character`);
    }
    if (rel.startsWith('src') && /\bconsole\.log\(/.test(line)) {
      problems.push(`${rel}:${index + 1}: console.log in library code`);
    }
  });
}
for (const problem of problems) {
  process.stdout.write(`${problem}\n`);
}
process.stdout.write(`lint: ${problems.length} problem(s)\n`);
process.exit(problems.length === 0 ? 0 : 1);
