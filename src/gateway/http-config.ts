import { CaptureSpec } from '../capture/index.js';
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node, type YAMLError } from 'yaml';
import { z } from 'zod';
import { WitnessError } from '../core/index.js';
import { loadPolicyFile, requireApprovers, type Policy } from '../policy/index.js';

/**
 * The `witness gateway --config` file: YAML, validated by a strict zod schema so a misspelt key
 * is an error rather than a silently ignored setting. Every problem is reported as
 * `<file> line N: <one sentence>`, the way policy files are (src/policy/parse.ts).
 */

export const DEFAULT_LISTEN = '127.0.0.1:8808';
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SESSION_IDLE_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_SESSIONS = 256;
/** 2026-07-28 groups (Witness sessions made from an agent's hints) one agent may hold open: no agent takes every max_sessions slot. */
export const DEFAULT_MAX_GROUPS_PER_AGENT = 32;
/** Requests open at once in one 2026-07-28 group (slow calls, held calls and listen streams together). */
export const DEFAULT_MAX_REQUESTS_PER_GROUP = 64;
/** subscriptions/listen streams open at once in one 2026-07-28 group. */
export const DEFAULT_MAX_LISTENS_PER_GROUP = 8;
const MAX_CONFIG_BYTES = 1024 * 1024;

const positiveInt = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .positive({ error: 'must be a positive whole number' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'must be at most 2^53 - 1' });
const plainName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, { error: 'must be a name of letters, digits and . _ : - (at most 128 characters)' });

const AgentSchema = z.strictObject({
  id: z.string().min(1).max(512),
  key_sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, { error: 'must be 64 hex digits, the SHA-256 of the key (run `witness gateway-key` to make one)' }),
});

const ServerSchema = z
  .strictObject({
    name: plainName,
    path: z.string().regex(/^\/[A-Za-z0-9._~\-/]*$/, { error: 'must be a URL path starting with / (letters, digits and . _ ~ - /)' }),
    command: z.string().min(1).optional(),
    args: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().min(1).optional(),
    url: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    policy: z.string().min(1).optional(),
    on_record_failure: z.enum(['refuse', 'forward']).optional(),
    record_lists: z.boolean().optional(),
    max_frame_bytes: positiveInt.optional(),
    /** Screenshots around tool calls: tool name → { url, before, after, mask, … } (src/capture). */
    capture: z.record(z.string().min(1), CaptureSpec).optional(),
  })
  .superRefine((s, ctx) => {
    if ((s.command === undefined) === (s.url === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'needs exactly one of command (a stdio server to start) or url (an HTTP server to forward to)' });
    }
    if (s.url !== undefined) {
      let ok: boolean;
      try {
        ok = ['http:', 'https:'].includes(new URL(s.url).protocol);
      } catch {
        ok = false;
      }
      if (!ok) ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be an http:// or https:// URL' });
      for (const k of ['args', 'env', 'cwd'] as const) {
        if (s[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'applies only to a server started with command, not to one reached by url' });
      }
    }
    if (s.command !== undefined && s.headers !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['headers'], message: 'applies only to a server reached by url, not to one started with command' });
    }
  });

const GatewayFileSchema = z
  .strictObject({
    listen: z.string().optional(),
    store: z.string().min(1).optional(),
    policy: z.string().min(1).optional(),
    max_body_bytes: positiveInt.optional(),
    session_idle_ms: positiveInt.optional(),
    max_sessions: positiveInt.optional(),
    max_groups_per_agent: positiveInt.optional(),
    max_requests_per_group: positiveInt.optional(),
    max_listens_per_group: positiveInt.optional(),
    approvals: z.strictObject({ timeout_ms: positiveInt.optional(), poll_ms: positiveInt.optional(), progress_ms: positiveInt.optional() }).optional(),
    agents: z.array(AgentSchema).min(1, { error: 'must list at least one agent' }),
    servers: z.array(ServerSchema).min(1, { error: 'must list at least one server' }),
  })
  .superRefine((f, ctx) => {
    if (f.listen !== undefined && parseListen(f.listen) === undefined) {
      ctx.addIssue({ code: 'custom', path: ['listen'], message: 'must be host:port or a port, like "127.0.0.1:8808"' });
    }
    const dup = <T>(items: T[], key: (t: T) => string, field: string, what: string, list: string) => {
      const seen = new Set<string>();
      items.forEach((it, i) => {
        const k = key(it);
        if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [list, i, field], message: `repeats ${what} "${k}" given earlier in ${list}` });
        seen.add(k);
      });
    };
    dup(f.agents, (a) => a.id, 'id', 'the agent id', 'agents');
    dup(f.agents, (a) => a.key_sha256.toLowerCase(), 'key_sha256', 'the key hash', 'agents');
    dup(f.servers, (s) => s.name, 'name', 'the server name', 'servers');
    dup(f.servers, (s) => normalPath(s.path), 'path', 'the path', 'servers');
    // Every server is also reached at /<name>/mcp (http-gateway.ts route): a path there would make one URL mean two servers.
    const names = new Set(f.servers.map((s) => s.name));
    f.servers.forEach((s, i) => {
      const alias = /^\/([^/]+)\/mcp$/.exec(normalPath(s.path));
      if (alias !== null && alias[1] !== s.name && names.has(alias[1]!)) {
        ctx.addIssue({
          code: 'custom',
          path: ['servers', i, 'path'],
          message: `"${normalPath(s.path)}" is where server "${alias[1]}" is also reached (every server answers at /<name>/mcp too); choose another path`,
        });
      }
    });
  });

type GatewayFile = z.infer<typeof GatewayFileSchema>;

export type UpstreamConfig =
  { kind: 'stdio'; command: string; args: string[]; env: Record<string, string> | undefined; cwd: string | undefined } | { kind: 'http'; url: string; headers: Record<string, string> | undefined };

export interface GatewayServerConfig {
  name: string;
  /** Normalised: no trailing slash. */
  path: string;
  upstream: UpstreamConfig;
  policy?: Policy | undefined;
  failOpen: boolean;
  recordLists: boolean;
  maxFrameBytes?: number | undefined;
  capture?: Record<string, CaptureSpec> | undefined;
}

export interface GatewayAgentConfig {
  id: string;
  /** Lower-case hex SHA-256 of the key; the key itself is never in the configuration. */
  keySha256: string;
}

export interface GatewayConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Ledger URL from the file, resolved against the file's directory; undefined when not given. */
  store?: string | undefined;
  maxBodyBytes: number;
  sessionIdleMs: number;
  /** Open MCP sessions (each with its own upstream process or connection) across all agents. */
  maxSessions: number;
  /** Open 2026-07-28 groups (sessions) of one agent. */
  maxGroupsPerAgent: number;
  /** Open requests (listen streams included) of one 2026-07-28 group. */
  maxRequestsPerGroup: number;
  /** Open subscriptions/listen streams of one 2026-07-28 group. */
  maxListensPerGroup: number;
  approvals?: { timeoutMs?: number; pollMs?: number; progressMs?: number } | undefined;
  agents: GatewayAgentConfig[];
  servers: GatewayServerConfig[];
}

/** Reads and validates a gateway configuration file. Throws WitnessError `invalid_argument` naming the line. */
export function loadGatewayConfig(file: string): GatewayConfig {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WitnessError('invalid_argument', `The gateway configuration ${file} cannot be read (${code ?? String(e)}); pass an existing YAML file with --config.`);
  }
  return parseGatewayConfig(bytes.toString('utf8'), { source: file, baseDir: path.dirname(path.resolve(file)) });
}

export function parseGatewayConfig(text: string, options: { source?: string; baseDir?: string } = {}): GatewayConfig {
  const source = options.source ?? 'gateway configuration';
  const baseDir = options.baseDir ?? process.cwd();
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) fail(source, 1, `the file is larger than ${MAX_CONFIG_BYTES} bytes`);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true, merge: false });
  const lineAt = (offset: number): number => lines.linePos(offset).line;
  const yamlError: YAMLError | undefined = doc.errors[0] ?? doc.warnings[0];
  if (yamlError !== undefined) fail(source, lineAt(yamlError.pos[0]), yamlMessage(yamlError));
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 0 });
  } catch (e) {
    fail(source, 1, `not valid YAML (${firstLine(e)})`);
  }
  if (data === null || data === undefined) fail(source, 1, 'the file is empty; a gateway configuration needs at least agents and servers');
  const parsed = GatewayFileSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const { line, message } = describeIssue(issue, doc, lineAt);
    fail(source, line, message);
  }
  return resolve(parsed.data, doc, lineAt, source, baseDir);
}

function resolve(f: GatewayFile, doc: Document, lineAt: (o: number) => number, source: string, baseDir: string): GatewayConfig {
  const listen = parseListen(f.listen ?? DEFAULT_LISTEN)!;
  const readPolicy = (file: string, at: Array<string | number>): Policy => {
    const full = path.resolve(baseDir, file);
    try {
      const policy = loadPolicyFile(full);
      // A policy that can hold a call must name who can release it, or the gateway does not start.
      requireApprovers(policy);
      return policy;
    } catch (e) {
      // A policy file's own errors already name its file and line; a missing one is named here.
      if (e instanceof WitnessError && e.code === 'not_found') fail(source, lineOf(doc, at, lineAt), `the policy file ${full} does not exist`);
      throw e;
    }
  };
  const defaultPolicy = f.policy === undefined ? undefined : readPolicy(f.policy, ['policy']);
  const approvals =
    f.approvals === undefined
      ? undefined
      : {
          ...(f.approvals.timeout_ms === undefined ? {} : { timeoutMs: f.approvals.timeout_ms }),
          ...(f.approvals.poll_ms === undefined ? {} : { pollMs: f.approvals.poll_ms }),
          ...(f.approvals.progress_ms === undefined ? {} : { progressMs: f.approvals.progress_ms }),
        };
  return {
    host: listen.host,
    port: listen.port,
    store: f.store === undefined ? undefined : resolveStoreUrl(f.store, baseDir),
    maxBodyBytes: f.max_body_bytes ?? DEFAULT_MAX_BODY_BYTES,
    sessionIdleMs: f.session_idle_ms ?? DEFAULT_SESSION_IDLE_MS,
    maxSessions: f.max_sessions ?? DEFAULT_MAX_SESSIONS,
    maxGroupsPerAgent: f.max_groups_per_agent ?? DEFAULT_MAX_GROUPS_PER_AGENT,
    maxRequestsPerGroup: f.max_requests_per_group ?? DEFAULT_MAX_REQUESTS_PER_GROUP,
    maxListensPerGroup: f.max_listens_per_group ?? DEFAULT_MAX_LISTENS_PER_GROUP,
    approvals,
    agents: f.agents.map((a) => ({ id: a.id, keySha256: a.key_sha256.toLowerCase() })),
    servers: f.servers.map((s, i) => ({
      name: s.name,
      path: normalPath(s.path),
      upstream:
        s.url !== undefined
          ? { kind: 'http', url: s.url, headers: s.headers }
          : { kind: 'stdio', command: s.command!, args: s.args ?? [], env: s.env, cwd: s.cwd === undefined ? undefined : path.resolve(baseDir, s.cwd) },
      policy: s.policy === undefined ? defaultPolicy : readPolicy(s.policy, ['servers', i, 'policy']),
      failOpen: s.on_record_failure === 'forward',
      recordLists: s.record_lists ?? false,
      maxFrameBytes: s.max_frame_bytes,
      capture: s.capture,
    })),
  };
}

/** A relative SQLite path in the file is relative to the file, like its policy paths. */
function resolveStoreUrl(store: string, baseDir: string): string {
  const m = /^sqlite:(?!\/\/)(.+)$/.exec(store);
  if (m === null || path.isAbsolute(m[1]!) || m[1] === ':memory:') return store;
  return `sqlite:${path.resolve(baseDir, m[1]!)}`;
}

export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(s.trim());
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1] === undefined || m[1] === '' ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '');
  return { host, port };
}

export function normalPath(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

// ---------------------------------------------------------------- messages

function fail(source: string, line: number, message: string): never {
  throw new WitnessError('invalid_argument', `${source} line ${line}: ${message.replace(/\.$/, '')}.`, { details: { file: source, line } });
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lineAt: (o: number) => number): { line: number; message: string } {
  const at = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const field = fieldName(at);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const where = field === '' ? 'the file' : field;
    return { line: lineOf(doc, [...at, key], lineAt, true), message: `"${key}" is not a setting of ${where}${hint(at)}` };
  }
  const line = lineOf(doc, at, lineAt);
  const subject = field === '' ? 'the file' : field;
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return { line, message: `${subject} is missing` };
    if (/^must /.test(issue.message)) return { line, message: `${subject} ${issue.message}` };
    return { line, message: `${subject} must be ${article(issue.expected)}` };
  }
  if (issue.code === 'invalid_value') return { line, message: `${subject} must be ${issue.values.map(String).join(' or ')}` };
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const custom = /^must /.test(issue.message) ? issue.message : `is out of range (${issue.message.toLowerCase()})`;
    return { line, message: `${subject} ${custom}` };
  }
  return { line, message: `${subject} ${issue.message}` };
}

function hint(at: Array<string | number>): string {
  if (at.length === 0)
    return ' (known: listen, store, policy, max_body_bytes, session_idle_ms, max_sessions, max_groups_per_agent, max_requests_per_group, max_listens_per_group, approvals, agents, servers)';
  if (at[0] === 'servers' && at.length === 2) return ' (a server has name, path, command/args/env/cwd or url/headers, policy, on_record_failure, record_lists, max_frame_bytes, capture)';
  if (at[0] === 'agents' && at.length === 2) return ' (an agent has id and key_sha256)';
  return '';
}

function article(expected: string): string {
  if (expected === 'array') return 'a list';
  if (expected === 'object' || expected === 'record') return 'a mapping';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function fieldName(at: Array<string | number>): string {
  return at.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** The line of the node at `at`, or of the nearest parent that exists (a missing key: its mapping). */
function lineOf(doc: Document, at: Array<string | number>, lineAt: (o: number) => number, keyNode = false): number {
  let node: unknown = doc.contents;
  let line = 1;
  const start = (n: unknown): number | undefined => (n as Node | null)?.range?.[0];
  if (start(node) !== undefined) line = lineAt(start(node)!);
  for (const step of at) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === step);
      if (pair === undefined) break;
      if (keyNode && step === at[at.length - 1]) return start(pair.key) === undefined ? line : lineAt(start(pair.key)!);
      next = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof step === 'number') {
      next = node.items[step];
    }
    if (next === undefined || next === null) break;
    node = next;
    if (start(node) !== undefined) line = lineAt(start(node)!);
  }
  return line;
}

function yamlMessage(e: YAMLError): string {
  if (e.code === 'DUPLICATE_KEY') return 'a key appears twice in the same mapping';
  if (e.code === 'MULTIPLE_DOCS') return 'a second YAML document starts here, but a gateway configuration holds exactly one';
  return `not valid YAML (${firstLine(e)})`;
}

function firstLine(e: unknown): string {
  const s = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/\.$/, '');
  return s.charAt(0).toLowerCase() + s.slice(1);
}
