import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/ledger.js';

/**
 * `import 'witness'` is what every agent pays at start-up: it must not load Chromium's driver or a
 * PostgreSQL client, which only captures and `postgres://` stores need (they are imported lazily).
 * Both are CommonJS packages, so whatever loads them shows in the CommonJS module cache.
 */
function modulesLoadedBy(imports: string[], then = ''): string[] {
  const script = [
    ...imports.map((m) => `await import(${JSON.stringify(m)});`),
    then,
    `const { createRequire } = await import('node:module');`,
    `console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`,
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

const heavy = (files: string[]) => files.filter((f) => /[/\\]node_modules[/\\](playwright-core|pg|pg-[a-z-]+)[/\\]/.test(f));

describe('the SDK facade', () => {
  it('loads neither playwright-core nor pg when imported', () => {
    const facade = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    expect(heavy(modulesLoadedBy([facade]))).toEqual([]);
  });

  it('would see playwright-core if something loaded it (the check can fail)', () => {
    expect(heavy(modulesLoadedBy(['playwright-core'])).length).toBeGreaterThan(0);
  });

  it('loads no pg for a SQLite ledger opened, written and closed through openLedger, and loads it for a postgres:// URL', () => {
    const facade = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-surface-'));
    const use = (url: string, refused = false) => {
      const body = `const l = await openLedger(${JSON.stringify(url)}); await l.append([{ stream: 's', agent: { id: 'a' }, kind: 'note', data: { text: 'x' } }]); await l.close();`;
      return `const { openLedger } = await import(${JSON.stringify(facade)}); ${refused ? `try { ${body} } catch {}` : body}`;
    };
    expect(heavy(modulesLoadedBy([], use(`sqlite:${path.join(dir, 'w.db')}`)))).toEqual([]);
    // Port 1 refuses the connection: the driver is loaded all the same, which is what this shows.
    expect(heavy(modulesLoadedBy([], use('postgres://postgres@127.0.0.1:1/test?schema=w', true))).some((f) => /[/\\]pg[/\\]/.test(f))).toBe(true);
  });
});

/**
 * The ES modules an import resolves (a module hook reports each resolved URL to the main thread),
 * for the subpath exports, which are ES modules and never show in the CommonJS cache.
 */
function esModulesResolvedBy(specifier: string): string[] {
  const hooks = `let port; export function initialize(d) { port = d.port; } export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }`;
  const script = [
    `import { register } from 'node:module';`,
    `import { MessageChannel } from 'node:worker_threads';`,
    `const { port1, port2 } = new MessageChannel();`,
    `const seen = [];`,
    `port1.on('message', (u) => seen.push(u));`,
    `register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)}, import.meta.url, { data: { port: port2 }, transferList: [port2] });`,
    `await import(${JSON.stringify(specifier)});`,
    `await new Promise((r) => setTimeout(r, 200));`,
    `port1.close();`,
    `console.log(JSON.stringify(seen));`,
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

const wrappers = (urls: string[]) => urls.filter((u) => /\/dist\/integrations\/|\/node_modules\/(@anthropic-ai\/sdk|openai)\//.test(u));

describe('the LLM client wrappers (witness/anthropic, witness/openai)', () => {
  it('are not loaded by import "witness", nor are the provider SDKs', () => {
    const facade = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    expect(wrappers(esModulesResolvedBy(facade))).toEqual([]);
  });

  it('load from their subpath exports without loading the provider SDKs (the check can fail)', () => {
    for (const [sub, file] of [
      ['witness/anthropic', 'anthropic.js'],
      ['witness/openai', 'openai.js'],
    ] as const) {
      const loaded = wrappers(esModulesResolvedBy(sub));
      expect(loaded.some((u) => u.endsWith(`/dist/integrations/${file}`))).toBe(true);
      expect(loaded.filter((u) => u.includes('/node_modules/'))).toEqual([]);
    }
  });
});

const sdkAdapters = (urls: string[]) => urls.filter((u) => /\/dist\/integrations\/(ai|langchain)\.js$|\/node_modules\/(ai|@ai-sdk\/[^/]+|@langchain\/[^/]+)\//.test(u));

describe('the AI SDK and LangChain adapters (witness/ai, witness/langchain)', () => {
  it('are not loaded by import "witness", nor are the AI SDK or LangChain', () => {
    const facade = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    expect(sdkAdapters(esModulesResolvedBy(facade))).toEqual([]);
  });

  it('load from their subpath exports, with the SDK they adapt (the check can fail)', () => {
    for (const [sub, file, sdk] of [
      ['witness/ai', 'ai.js', /\/node_modules\/ai\//],
      ['witness/langchain', 'langchain.js', /\/node_modules\/@langchain\/core\//],
    ] as const) {
      const loaded = sdkAdapters(esModulesResolvedBy(sub));
      expect(loaded.some((u) => u.endsWith(`/dist/integrations/${file}`))).toBe(true);
      expect(loaded.some((u) => sdk.test(u))).toBe(true);
    }
  });
});
