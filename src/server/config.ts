import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { APPROVER_NAME, WitnessError } from '../core/index.js';
import type { Role } from './roles.js';

/**
 * The server's config file (`witness serve --config server.yaml`), parsed once at start: every
 * problem is one sentence, `<file> line N: <field> <what is wrong>`, and the server does not start.
 *
 * ```yaml
 * public_url: https://witness.example.com      # where people reach the viewer
 * oidc:
 *   issuer: https://login.example.com/realms/corp
 *   client_id: witness
 *   client_secret_env: WITNESS_OIDC_SECRET     # or client_secret_file: (relative to this file), or client_secret:
 *   scopes: [openid, profile, groups]
 *   roles:
 *     claim: groups
 *     map:                                     # tried in this order; the first value the person has wins
 *       auditors: auditor
 *       approvers: approver
 *       devs: developer
 *   approvers:                                 # OpenID Connect people who may decide approvals (role approver)
 *     - subject: 248289761001                  # the provider's `sub` for them, exactly (never an email)
 *       name: alice@acme.example               # their approver identity: the name in the key
 *                                              # `witness keys oidc-approver` made for this issuer + subject
 * ```
 */

/** Roles a person can be given by a sign-in: never `agent`, which ingests and is an API key's alone. */
export const PERSON_ROLES = ['developer', 'approver', 'auditor', 'admin'] as const satisfies readonly Role[];
export type PersonRole = (typeof PERSON_ROLES)[number];

export const OIDC_CALLBACK_PATH = '/sign-in/oidc/callback';

export interface OidcConfig {
  issuer: string;
  clientId: string;
  /** Undefined for a public client (token_endpoint_auth_method none, PKCE alone). */
  clientSecret?: string;
  clientAuth: 'client_secret_basic' | 'client_secret_post' | 'none';
  redirectUri: string;
  scopes: string[];
  /** Shown on the sign-in button ("Sign in with …"). */
  label: string;
  /** The claim (in the ID token, else from the userinfo endpoint) whose value(s) pick the role. */
  roleClaim: string;
  /** In the order written in the file: the first entry whose value the person's claim holds gives the role. */
  roleMap: Array<{ value: string; role: PersonRole }>;
  /**
   * People this provider signs in who may decide approval requests, each bound by the provider's
   * `sub` (exactly; with `issuer`, the identity OIDC Core says is stable and never reassigned) to
   * the approver signing key the server holds for that issuer and subject (approver-keys.ts). The
   * name is the key's, checked when a decision is signed. Empty when the file lists none.
   */
  approvers: OidcApprover[];
}

export interface OidcApprover {
  subject: string;
  name: string;
}

export interface ServerConfig {
  publicUrl?: string;
  oidc?: OidcConfig;
  /** Continuous OTLP export (`witness serve --otlp-export`); the flags override it. */
  otlpExport?: { url: string; protocol?: 'http/protobuf' | 'http/json'; headers?: Record<string, string>; state?: string; interval?: string };
}

const MAX_CONFIG_BYTES = 256 * 1024;
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/;

/** An http(s) URL; plain http only on a loopback address, where nothing crosses a network. */
function webUrl(what: string) {
  return z.string().superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be an https URL (http only for a loopback address, for testing), not "${s}"` });
      return;
    }
    if (u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.test(u.hostname))) {
      if (u.hash !== '' || (what === 'issuer' && u.search !== '')) ctx.addIssue({ code: 'custom', message: `must be a URL with no ${u.hash !== '' ? 'fragment' : 'query'}` });
      return;
    }
    ctx.addIssue({ code: 'custom', message: `must be an https URL (http only for a loopback address, for testing), not "${s}"` });
  });
}

const Name = z.string().min(1).max(512);

const RoleName = z.string().superRefine((s, ctx) => {
  if ((PERSON_ROLES as readonly string[]).includes(s)) return;
  ctx.addIssue({
    code: 'custom',
    message: s === 'agent' ? 'may not map to agent: a person can be a developer, approver, auditor or admin' : `must be developer, approver, auditor or admin, not ${JSON.stringify(s)}`,
  });
});

const OidcSection = z.strictObject({
  issuer: webUrl('issuer'),
  client_id: Name,
  client_secret: Name.optional(),
  client_secret_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable')
    .optional(),
  client_secret_file: Name.optional(),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
  redirect_uri: webUrl('redirect_uri').optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope name (no spaces or quotes)')).optional(),
  label: z.string().min(1).max(64).optional(),
  roles: z.strictObject({
    claim: Name,
    map: z.record(z.string().min(1), RoleName),
  }),
  approvers: z.array(z.unknown()).optional(),
});

/** Approver identities as witness keys oidc-approver accepts them (core's APPROVER_NAME). */
const ApproverEntry = z.strictObject({
  // A subject is whatever string the provider issues; YAML may read a numeric one as a number.
  subject: z.union([z.string().min(1).max(255), z.number().int().nonnegative()]).transform(String),
  name: z.string().regex(APPROVER_NAME, 'must be an approver identity of letters, digits and . _ @ - (as in alice@acme.example)'),
});

const OtlpExportSection = z.strictObject({
  url: z.string().min(1),
  protocol: z.enum(['http/protobuf', 'http/json']).optional(),
  headers: z.record(z.string().min(1), z.string()).optional(),
  state: z.string().min(1).optional(),
  interval: z.string().min(1).optional(),
});

const ConfigFile = z.strictObject({
  public_url: webUrl('public_url').optional(),
  oidc: OidcSection.optional(),
  otlp_export: OtlpExportSection.optional(),
});

const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(ConfigFile.shape),
  oidc: Object.keys(OidcSection.shape),
  'oidc.roles': ['claim', 'map'],
  otlp_export: Object.keys(OtlpExportSection.shape),
};
const APPROVER_KEYS = ['subject', 'name'];

type Env = Record<string, string | undefined>;

/** Reads and parses the config file at `file`; secrets named by environment variable are read from `env`. */
export function loadServerConfig(file: string, env: Env = process.env): ServerConfig {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new WitnessError('invalid_argument', `${file}: no such config file.`, { cause: e, details: { file } });
    throw new WitnessError('invalid_argument', `${file}: the config file cannot be read (${code ?? String(e)}).`, { cause: e, details: { file } });
  }
  if (bytes.length > MAX_CONFIG_BYTES)
    throw new WitnessError('invalid_argument', `${file}: the config file is ${bytes.length} bytes, more than the ${MAX_CONFIG_BYTES} allowed.`, { details: { file } });
  return parseServerConfig(bytes.toString('utf8'), { source: file, env, dir: path.dirname(path.resolve(file)) });
}

export function parseServerConfig(text: string, options: { source?: string; env?: Env; dir?: string } = {}): ServerConfig {
  const source = options.source ?? 'config';
  const env = options.env ?? process.env;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true, merge: false });
  const lineAt = (offset: number): number => lines.linePos(offset).line;
  const fail: (line: number, message: string, field?: string) => never = (line, message, field = '') => {
    throw new WitnessError('invalid_argument', `${source} line ${line}: ${message.replace(/\.$/, '')}.`, { details: { file: source, line, path: field } });
  };

  const syntax = [...doc.errors, ...doc.warnings][0];
  if (syntax !== undefined) fail(lineAt(syntax.pos[0]), `not valid YAML (${firstLine(syntax.message)})`);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 0 });
  } catch (e) {
    fail(1, `not valid YAML (${firstLine(e instanceof Error ? e.message : String(e))})`);
  }
  if (data === null || data === undefined) fail(1, 'the file is empty; write an oidc: section (see the README, "Server")');

  const where = new Where(doc, lineAt);
  const parsed = ConfigFile.safeParse(data);
  if (!parsed.success) {
    // A missing field is often the echo of a misspelt one (`clientid:`), so an unknown key is named first.
    const rank = (i: z.core.$ZodIssue): number => (i.code === 'unrecognized_keys' ? 0 : valueAt(data, i.path.map(String)) === undefined ? 2 : 1);
    const issue = [...parsed.error.issues].sort((a, b) => rank(a) - rank(b))[0]!;
    const p = issue.path.map(String);
    const field = p.join('.');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      fail(where.keyLine([...p, key]), `${field === '' ? 'the file' : field} has an unknown key ${JSON.stringify(key)}${suggest(key, KNOWN_KEYS[field] ?? [])}`, [...p, key].join('.'));
    }
    if (valueAt(data, p) === undefined) fail(where.keyLine(p.slice(0, -1)), `${field} is missing`, field);
    const message = issue.code === 'invalid_type' ? `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}` : issue.code === 'too_small' ? 'must not be empty' : issue.message;
    fail(where.valueLine(p), `${field} ${message}`, field);
  }
  const file = parsed.data;
  const out: ServerConfig = {};
  const publicUrl = file.public_url?.replace(/\/+$/, '');
  if (publicUrl !== undefined) out.publicUrl = publicUrl;
  const x = file.otlp_export;
  // A relative state path is the config file's neighbour, as client_secret_file is.
  if (x !== undefined) out.otlpExport = { ...x, ...(x.state === undefined ? {} : { state: path.resolve(options.dir ?? process.cwd(), x.state) }) };
  const o = file.oidc;
  if (o === undefined) return out;

  const ways = (['client_secret', 'client_secret_env', 'client_secret_file'] as const).filter((k) => o[k] !== undefined);
  if (ways.length > 1)
    fail(where.keyLine(['oidc', ways[1]!]), `oidc: give the client secret one way only (client_secret, client_secret_env or client_secret_file), not ${ways.join(' and ')}`, `oidc.${ways[1]}`);
  let clientSecret: string | undefined = o.client_secret;
  if (o.client_secret_env !== undefined) {
    clientSecret = env[o.client_secret_env];
    if (clientSecret === undefined || clientSecret === '')
      fail(where.valueLine(['oidc', 'client_secret_env']), `oidc.client_secret_env names ${o.client_secret_env}, which is not set in this environment`, 'oidc.client_secret_env');
  }
  if (o.client_secret_file !== undefined) {
    const secretFile = path.resolve(options.dir ?? process.cwd(), o.client_secret_file);
    try {
      clientSecret = readFileSync(secretFile, 'utf8').trim();
    } catch (e) {
      fail(where.valueLine(['oidc', 'client_secret_file']), `oidc.client_secret_file ${secretFile} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 'oidc.client_secret_file');
    }
    if (clientSecret === '') fail(where.valueLine(['oidc', 'client_secret_file']), `oidc.client_secret_file ${secretFile} is empty`, 'oidc.client_secret_file');
  }
  const clientAuth = o.token_endpoint_auth_method ?? (clientSecret === undefined ? 'none' : 'client_secret_basic');
  if (clientAuth !== 'none' && clientSecret === undefined) {
    fail(
      where.valueLine(['oidc', 'token_endpoint_auth_method']),
      `oidc.token_endpoint_auth_method ${clientAuth} needs a client secret (client_secret_env, client_secret_file or client_secret)`,
      'oidc.token_endpoint_auth_method',
    );
  }
  const scopes = o.scopes ?? ['openid', 'profile', 'email'];
  if (!scopes.includes('openid')) fail(where.valueLine(['oidc', 'scopes']), 'oidc.scopes must include openid, or the provider returns no ID token', 'oidc.scopes');
  const redirectUri = o.redirect_uri ?? (publicUrl === undefined ? undefined : `${publicUrl}${OIDC_CALLBACK_PATH}`);
  if (redirectUri === undefined) fail(where.keyLine(['oidc']), `oidc.redirect_uri is missing: set it, or set public_url and it is derived (public_url + ${OIDC_CALLBACK_PATH})`, 'oidc.redirect_uri');
  if (!new URL(redirectUri!).pathname.endsWith(OIDC_CALLBACK_PATH)) {
    fail(where.valueLine(['oidc', 'redirect_uri']), `oidc.redirect_uri must end in ${OIDC_CALLBACK_PATH}, the path this server answers the provider on`, 'oidc.redirect_uri');
  }
  // The map's order is the order written: JavaScript objects would put keys that look like numbers first.
  const mapNode = doc.getIn(['oidc', 'roles', 'map'], true);
  const roleMap = isMap(mapNode)
    ? mapNode.items.map((pair) => ({ value: String(isScalar(pair.key) ? pair.key.value : pair.key), role: o.roles.map[String(isScalar(pair.key) ? pair.key.value : pair.key)] as PersonRole }))
    : [];
  if (roleMap.length === 0) fail(where.valueLine(['oidc', 'roles', 'map']), 'oidc.roles.map must map at least one claim value to a role; with none, nobody could sign in', 'oidc.roles.map');

  const approvers = parseApprovers(o.approvers, where, fail);

  out.oidc = {
    issuer: o.issuer,
    clientId: o.client_id,
    ...(clientSecret === undefined ? {} : { clientSecret }),
    clientAuth,
    redirectUri: redirectUri!,
    scopes,
    label: o.label ?? new URL(o.issuer).hostname,
    roleClaim: o.roles.claim,
    roleMap,
    approvers,
  };
  return out;
}

/**
 * `oidc.approvers`: each entry a subject and a name. An entry that names a person by email (or by
 * any claim but `sub`) is refused: an address can be reassigned to someone else, and a provider's
 * `email_verified` says only that the address worked once, so it never binds a signing key here.
 */
function parseApprovers(raw: unknown[] | undefined, where: Where, fail: (line: number, message: string, field?: string) => never): OidcApprover[] {
  const out: OidcApprover[] = [];
  const seen = new Set<string>();
  for (const [i, item] of (raw ?? []).entries()) {
    const at = ['oidc', 'approvers', String(i)];
    const field = `oidc.approvers[${i}]`;
    if (item !== null && typeof item === 'object' && !Array.isArray(item) && 'email' in item) {
      fail(
        where.keyLine([...at, 'email']),
        `${field} names a person by email, which can be reassigned to someone else; bind them by the provider's subject instead (subject: <their sub claim>)`,
        `${field}.email`,
      );
    }
    const r = ApproverEntry.safeParse(item);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      if (issue.code === 'unrecognized_keys') {
        const key = issue.keys[0]!;
        fail(where.keyLine([...at, key]), `${field} has an unknown key ${JSON.stringify(key)}${suggest(key, APPROVER_KEYS)}`, `${field}.${key}`);
      }
      const p = issue.path.map(String);
      if (p.length === 0) fail(where.valueLine(at), `${field} must be a mapping with subject: and name:`, field);
      if (valueAt(item, p) === undefined) fail(where.keyLine(at), `${field}.${p.join('.')} is missing`, `${field}.${p.join('.')}`);
      fail(where.valueLine([...at, ...p]), `${field}.${p.join('.')} ${issue.code === 'invalid_type' ? 'must be a string' : issue.message}`, `${field}.${p.join('.')}`);
    }
    if (seen.has(r.data.subject)) fail(where.valueLine([...at, 'subject']), `${field}.subject ${JSON.stringify(r.data.subject)} is listed twice; list each person once`, `${field}.subject`);
    seen.add(r.data.subject);
    out.push(r.data);
  }
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  record: 'a mapping (key: value lines)',
  array: 'a list',
};

/** Lines of the nodes a field path names in the YAML document, for messages. */
class Where {
  constructor(
    private readonly doc: Document,
    private readonly lineAt: (offset: number) => number,
  ) {}

  /** The line of the key that names `p` (of the nearest ancestor that exists). */
  keyLine(p: string[]): number {
    let node: unknown = this.doc.contents;
    let line = 1;
    for (const seg of p) {
      if (isSeq(node) && /^\d+$/.test(seg) && node.items[Number(seg)] !== undefined) {
        node = node.items[Number(seg)];
        line = this.line(node) ?? line;
        continue;
      }
      if (!isMap(node)) break;
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === seg);
      if (pair === undefined) break;
      line = this.line(pair.key) ?? line;
      node = pair.value;
    }
    return line;
  }

  /** The line of the value at `p` (or of its key, or its nearest ancestor). */
  valueLine(p: string[]): number {
    const node = this.doc.getIn(p, true);
    return this.line(node) ?? this.keyLine(p);
  }

  private line(node: unknown): number | undefined {
    const range = (node as { range?: [number, number, number] | null } | null | undefined)?.range;
    return range ? this.lineAt(range[0]) : undefined;
  }
}

function valueAt(data: unknown, p: string[]): unknown {
  let cur = data;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function firstLine(msg: string): string {
  const first = msg.split('\n')[0]!.replace(/\.$/, '');
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** `; did you mean "client_id"?` for a key within two edits of a known one. */
function suggest(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  if (best !== undefined) return `; did you mean ${JSON.stringify(best)}?`;
  return known.length === 0 ? '' : `; the keys allowed here are ${known.join(', ')}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
