/** Render issues as `path: message [code]` lines ('(root)' for the value itself). */
export function formatIssues(issues) {
  return issues.map((i) => `${i.path || '(root)'}: ${i.message} [${i.code}]`).join('\n');
}
