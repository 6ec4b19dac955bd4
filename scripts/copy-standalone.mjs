// Copies the standalone verifier (plain JavaScript, not compiled) beside the compiled export module,
// where `witness export` finds it to put in every bundle as verify.mjs.
import fs from 'node:fs';

fs.mkdirSync('dist/export/standalone', { recursive: true });
for (const f of fs.readdirSync('src/export/standalone')) {
  if (f.endsWith('.mjs')) fs.copyFileSync(`src/export/standalone/${f}`, `dist/export/standalone/${f}`);
}
