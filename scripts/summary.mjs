// Reads an `npm test` log and prints the single closing line CI looks for:
// "N passed, N failed" (native unit tests, fuzz targets, ava), then exits with the test status.
import { readFileSync } from 'node:fs';

const [logFile, statusArg] = process.argv.slice(2);
const text = readFileSync(logFile, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
const status = Number(statusArg ?? 1);

let passed = 0;
let failed = 0;
for (const m of text.matchAll(/^(?:native|fuzz): (\d+) passed, (\d+) failed/gm)) {
  passed += Number(m[1]);
  failed += Number(m[2]);
}
const count = (re) => [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
passed += count(/^\s*(\d+) tests? passed/gm);
failed += count(/^\s*(\d+) tests? failed/gm);
failed += count(/^\s*(\d+) uncaught exceptions?/gm);
failed += count(/^\s*(\d+) unhandled rejections?/gm);
const skipped = count(/^\s*(\d+) tests? skipped/gm);
if (status !== 0 && failed === 0) failed = 1; // a build or setup step failed before tests ran
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(status === 0 && failed === 0 ? 0 : 1);
