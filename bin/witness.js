#!/usr/bin/env node
// The published entry point: the compiled CLI. `npm ci` builds dist/ through the prepare script.
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const isHook = process.argv[2] === 'hook';
// For `witness hook` (hookFailed below): the payload seen on stdin, and whether a failure is being answered.
let observed;
let failing = false;
if (isHook) guardHook();

// `witness hook` runs once per tool call of a coding agent: it loads only its own command, bundled
// into one script by scripts/bundle-hook.mjs (dist/hook/hook.cjs) and compiled from the V8 code
// cache made with it, unless tsc has compiled the CLI since the bundle was made: then as compiled
// (dist/cli/commands/hook-main.js).
function loadHook() {
  const file = fileURLToPath(new URL('../dist/hook/hook.cjs', import.meta.url));
  try {
    if (fs.statSync(file).mtimeMs < fs.statSync(new URL('../dist/cli/commands/hook-main.js', import.meta.url)).mtimeMs) return undefined;
  } catch {
    // No bundle (a build without the bundler): the compiled command.
    return undefined;
  }
  let cachedData;
  try {
    cachedData = fs.readFileSync(`${file}.cache`);
  } catch {
    // Compiled from source instead (V8 also ignores a cache another Node version made).
  }
  // Compiled exactly as scripts/bundle-hook.mjs compiles it to make the cache.
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(file), module, file, path.dirname(file));
  return module.exports;
}
let entry;
try {
  entry = (isHook ? loadHook() : undefined) ?? (await import(isHook ? '../dist/cli/commands/hook-main.js' : '../dist/cli/index.js'));
} catch (e) {
  if (!isHook) throw e;
  await hookFailed('start', e);
}
const { guardStandardStreams, main, outputFailure } = entry;

// Before anything is written: a reader that closes early (`witness verify | head -1`) must not turn
// a verdict into exit 1 (src/cli/output.ts).
guardStandardStreams();
let code;
try {
  code = await main(process.argv);
} catch (e) {
  if (!isHook) throw e;
  await hookFailed('run', e);
}
// `witness hook` answers with 0 or 2 (2 also for bad usage); anything else is the hook failing in
// a way it did not answer for itself (an import of its store that failed, say), which main has
// already described on stderr.
if (isHook && code !== 0 && code !== 2) await hookFailed('run', new Error(`it ended with exit code ${code}; its message is above`));
// A failed write is reported on a later tick than the write: let every such report arrive first.
await new Promise((resolve) => setImmediate(resolve));
const lost = outputFailure();
if (code === 0 && lost !== undefined) {
  // The command worked but what it printed was lost (not a reader that closed: that is EPIPE).
  process.stderr.write(`witness: The output could not be written (${lost.code ?? lost.message}), so the command is reported as failed; check where standard output goes.\n`);
  process.exitCode = 1;
} else {
  process.exitCode = code;
}

/**
 * `witness hook` when Witness itself fails: the bundle or a module cannot load (a corrupt file, a
 * better-sqlite3 built for another Node.js, the everyday case after a Node upgrade), or an
 * exception or rejection nothing catches. Node would exit 1 with nothing on stdout, which Claude
 * Code, Codex and Gemini CLI take for a hook that failed, and run the tool call: `--fail closed`
 * would not hold (issue 16, review round 2, H-A). Here, with nothing of Witness loaded: `--fail`
 * read from argv without the CLI parser, the event's name from the payload on stdin (plain
 * JSON.parse), and the answer every one of the four agents honours: under `--fail closed` a tool
 * call or prompt is refused with exit 2 and the reason on stderr (Claude Code
 * https://code.claude.com/docs/en/hooks "Exit code 2 behavior"; Codex
 * https://developers.openai.com/codex/hooks; Cursor https://cursor.com/docs/hooks; Gemini CLI
 * https://geminicli.com/docs/hooks/), and any other event (Stop, a tool's result) goes on with
 * exit 0 and the reason on stderr, since exit 2 there would keep the agent working; under
 * `--fail open` everything goes on, with the reason on stderr. Nothing can be recorded when
 * Witness cannot load; a crash after the hook answered replaces its answer (under closed a call
 * it had allowed is refused: what it recorded may be incomplete).
 */
function guardHook() {
  process.on('uncaughtException', (e) => void hookFailed('run', e));
  process.on('unhandledRejection', (e) => void hookFailed('run', e));
  // The hook reads its payload with a 'data' listener; listening beside it keeps a copy, so that a
  // crash after the payload was read can still tell a tool call from a Stop. Added as the hook adds
  // its own, before any chunk can arrive (the stream starts flowing on a later tick).
  const watch = (name) => {
    if (name !== 'data') return;
    process.stdin.off('newListener', watch);
    observed ??= readPayload();
  };
  process.stdin.on('newListener', watch);
}

/** The payload on stdin (undefined when there is none, it is larger than the hook reads, or it does not end within 5 s). */
function readPayload() {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    const done = (text) => {
      clearTimeout(timer);
      resolve(text);
    };
    const timer = setTimeout(() => done(undefined), 5000);
    timer.unref();
    process.stdin.on('data', (c) => {
      size += c.length;
      if (size <= 16 * 1024 * 1024) chunks.push(c);
    });
    process.stdin.on('end', () => done(size <= 16 * 1024 * 1024 ? Buffer.concat(chunks).toString('utf8') : undefined));
    process.stdin.on('close', () => done(undefined));
    process.stdin.on('error', () => done(undefined));
  });
}

/** The value `--fail` has in argv (`--fail open`, `--fail=open`; the last one wins, as in the CLI parser); closed unless it says open. */
function failMode(argv) {
  let mode = 'closed';
  for (let i = 3; i < argv.length; i += 1) {
    if (argv[i] === '--') break;
    if (argv[i] === '--fail' && i + 1 < argv.length) mode = argv[(i += 1)];
    else if (argv[i].startsWith('--fail=')) mode = argv[i].slice('--fail='.length);
  }
  return mode === 'open' ? 'open' : 'closed';
}

async function hookFailed(when, error) {
  if (failing) return;
  failing = true;
  const agent = process.argv[3] ?? '<agent>';
  const fail = failMode(process.argv);
  const raw = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  // One line, no terminal controls: it is shown to the user and the model.
  const why = raw
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')
    .trim()
    .slice(0, 400);
  let text;
  if (observed === undefined && !process.stdin.isTTY && !process.stdin.readableEnded) observed = readPayload();
  if (observed !== undefined) text = await observed;
  let event;
  try {
    const payload = JSON.parse(text ?? '');
    if (typeof payload?.hook_event_name === 'string') event = payload.hook_event_name;
  } catch {
    // No payload, or not JSON: the event cannot be told, and under fail closed it is refused, as
    // the hook refuses a payload it cannot read.
  }
  let kind;
  try {
    const { REFUSABLE_EVENTS } = await import('../dist/integrations/hooks/refusable.js');
    const events = Object.prototype.hasOwnProperty.call(REFUSABLE_EVENTS, agent) ? REFUSABLE_EVENTS[agent] : undefined;
    if (events !== undefined && event !== undefined) kind = events.tool.includes(event) ? 'tool call' : events.prompt.includes(event) ? 'prompt' : 'other';
  } catch {
    // dist/ itself is gone: no event can be told apart, so under fail closed every one is refused.
  }
  const what = when === 'start' ? `Witness could not start (${why})` : `Witness failed while it ran (${why})`;
  const recorded = when === 'start' ? 'nothing was recorded' : 'what it recorded may be incomplete';
  const fix = `run \`witness hook ${agent} --help\` to see the fault, reinstall Witness, or after a Node.js upgrade run \`npm rebuild better-sqlite3\` where Witness is installed.`;
  let exitCode = 0;
  let message;
  if (fail === 'open') message = `${what}, so ${recorded} and this ${event ?? 'event'} goes on (fail open); ${fix}`;
  else if (kind === 'other') message = `${what}, so ${recorded} for this ${event} event, which cannot be refused and goes on; ${fix}`;
  else {
    exitCode = 2;
    const refusedWhat = kind === undefined ? 'this event (it could not be told whether it was a tool call)' : `this ${kind}`;
    message = `${what}, so ${refusedWhat} was refused (fail closed) and ${recorded}; ${fix}`;
  }
  try {
    fs.writeSync(2, `witness: ${message}\n`);
  } catch {
    // Nowhere to say it: the exit code still answers.
  }
  process.exit(exitCode);
}
