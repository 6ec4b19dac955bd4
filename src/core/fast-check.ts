import type { z } from 'zod';
import { isWellFormedString } from './canonical-json.js';

/**
 * Checks compiled from the zod schemas in event.ts, so the schemas stay the single source of what
 * an event may hold while the write path does not pay for zod's issue bookkeeping and output
 * copies (~1 µs an event, measured). A compiled check answers only "zod accepts this" or "ask zod":
 * it never rejects on its own. Whatever it cannot decide exactly (a construct it does not know, a
 * string whose length in code points is in doubt) it sends to zod, which then decides and writes
 * the error message. test/core/fast-check.test.ts proves on valid, invalid and fuzzed events that
 * it never accepts what zod refuses, and accepts the events the recorder writes.
 *
 * It mirrors zod 4's own operations (`key in value` for presence, `for…in` for unknown keys,
 * `value[key]` read once), so prototypes and accessors are seen as zod sees them.
 */

/** "Not decided here": the caller asks zod. */
export const ASK_ZOD: unique symbol = Symbol('ask zod');

/**
 * `copy`: returns a fresh copy built like zod's output (objects with only their declared members,
 * in JCS order, arrays copied) whose strings are also well-formed UTF-16, so it can be hashed as is;
 * `check`: returns the value itself (for a value that is already a private plain copy).
 */
export type Mode = 'copy' | 'check';
export type Check = (v: unknown) => unknown;

type AnySchema = z.core.$ZodType;

interface Def {
  type: string;
  checks?: Array<{ _zod: { def: CheckDef } }>;
  coerce?: boolean;
  shape?: Record<string, AnySchema>;
  catchall?: AnySchema;
  element?: AnySchema;
  innerType?: AnySchema;
  options?: AnySchema[];
}

interface CheckDef {
  check: string;
  format?: string;
  pattern?: RegExp;
  value?: unknown;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
}

const defOf = (s: AnySchema): Def => s._zod.def as unknown as Def;

export function compileCheck(schema: AnySchema, mode: Mode): Check {
  const def = defOf(schema);
  if (def.coerce === true) return viaZod(schema, mode);
  return compileDef(schema, def, mode);
}

/**
 * A strict or loose object whose members listed in `checkOnly` are checked in check mode and left
 * out of the copy (an event's `data`, already a private plain copy, beside its header).
 */
export function compileObject(schema: AnySchema, mode: Mode, checkOnly: readonly string[] = []): Check {
  return withChecks(schema, mode, objectCheck(schema, mode, new Set(checkOnly)));
}

function compileDef(schema: AnySchema, def: Def, mode: Mode): Check {
  switch (def.type) {
    case 'string':
      return withChecks(schema, mode, stringCheck(mode));
    case 'number':
      return withChecks(schema, mode, (v) => (typeof v === 'number' && Number.isFinite(v) ? v : ASK_ZOD));
    case 'boolean':
      return withChecks(schema, mode, (v) => (typeof v === 'boolean' ? v : ASK_ZOD));
    case 'enum':
    case 'literal': {
      const values = schema._zod.values as ReadonlySet<unknown> | undefined;
      if (values === undefined) return viaZod(schema, mode);
      return withChecks(schema, mode, (v) => (values.has(v) ? v : ASK_ZOD));
    }
    case 'unknown':
      // A copy must be plain JSON with well-formed strings, which zod does not check for.
      return mode === 'check' ? withChecks(schema, mode, (v) => v) : viaZod(schema, mode);
    case 'optional': {
      const inner = compileCheck(def.innerType!, mode);
      if (schema._zod.optin !== 'optional' || (def.checks?.length ?? 0) > 0) return viaZod(schema, mode);
      return (v) => (v === undefined ? v : inner(v));
    }
    case 'union': {
      const options = (def.options ?? []).map((o) => compileCheck(o, mode));
      return withChecks(schema, mode, (v) => {
        for (const o of options) {
          const r = o(v);
          if (r !== ASK_ZOD) return r;
        }
        return ASK_ZOD;
      });
    }
    case 'array': {
      const element = compileCheck(def.element!, mode);
      return withChecks(schema, mode, (v) => {
        if (!Array.isArray(v)) return ASK_ZOD;
        const n = v.length;
        const out: unknown[] | undefined = mode === 'copy' ? new Array<unknown>(n) : undefined;
        for (let i = 0; i < n; i++) {
          const r = element(v[i]);
          if (r === ASK_ZOD) return ASK_ZOD;
          if (out !== undefined) out[i] = r;
        }
        return out ?? v;
      });
    }
    case 'object':
      return withChecks(schema, mode, objectCheck(schema, mode, NONE));
    default:
      return viaZod(schema, mode);
  }
}

function stringCheck(mode: Mode): Check {
  // A lone surrogate is legal for zod but not for JCS: the slow path names it precisely.
  return mode === 'copy' ? (v) => (typeof v === 'string' && isWellFormedString(v) ? v : ASK_ZOD) : (v) => (typeof v === 'string' ? v : ASK_ZOD);
}

const NONE: ReadonlySet<string> = new Set();

function objectCheck(schema: AnySchema, mode: Mode, checkOnly: ReadonlySet<string>): Check {
  const def = defOf(schema);
  const shape = def.shape ?? {};
  const catchallType = def.catchall === undefined ? 'strip' : defOf(def.catchall).type;
  if (catchallType !== 'never' && catchallType !== 'unknown') return viaZod(schema, mode);
  const strict = catchallType === 'never';
  // Copies keep only declared members, which a loose object would drop: copy mode is for strict ones.
  if (mode === 'copy' && !strict) return viaZod(schema, mode);
  const keys = Object.keys(shape).sort();
  const fields: Array<{ key: string; optional: boolean; copied: boolean; check: Check }> = [];
  for (const key of keys) {
    const f = shape[key]!;
    const optin = f._zod.optin;
    const optout = f._zod.optout;
    // Only the two rungs event.ts uses: required, and `.optional()`.
    if (key === '__proto__' || (optin !== undefined && !(optin === 'optional' && optout === 'optional'))) return viaZod(schema, mode);
    const only = checkOnly.has(key);
    fields.push({ key, optional: optin === 'optional', copied: !only, check: compileCheck(f, only ? 'check' : mode) });
  }
  const known = new Set(keys);
  return (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return ASK_ZOD;
    const rec = v as Record<string, unknown>;
    const out: Record<string, unknown> | undefined = mode === 'copy' ? {} : undefined;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      const k = f.key;
      if (f.optional) {
        if (!(k in rec)) continue;
        const x = rec[k];
        if (x === undefined) continue;
        const r = f.check(x);
        if (r === ASK_ZOD) return ASK_ZOD;
        if (out !== undefined && f.copied) out[k] = r;
      } else {
        const r = f.check(rec[k]);
        if (r === ASK_ZOD || !(k in rec)) return ASK_ZOD;
        if (out !== undefined && f.copied) out[k] = r;
      }
    }
    if (strict) for (const k in rec) if (!known.has(k)) return ASK_ZOD;
    return out ?? v;
  };
}

/** Runs the schema's own checks (lengths, patterns, bounds) after the type test. */
function withChecks(schema: AnySchema, mode: Mode, base: Check): Check {
  const defs = (defOf(schema).checks ?? []).map((c) => c._zod.def);
  if (defs.length === 0) return base;
  const tests: Array<(v: never) => boolean> = [];
  for (const d of defs) {
    const t = checkTest(d);
    if (t === undefined) return viaZod(schema, mode);
    tests.push(t);
  }
  return (v) => {
    const r = base(v);
    if (r === ASK_ZOD) return ASK_ZOD;
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(v as never)) return ASK_ZOD;
    return r;
  };
}

/** One zod check as a predicate, or undefined for a check this compiler does not know. */
function checkTest(d: CheckDef): ((v: never) => boolean) | undefined {
  switch (d.check) {
    case 'string_format': {
      const p = d.pattern;
      if (d.format !== 'regex' || !(p instanceof RegExp)) return undefined;
      return (v: string) => {
        p.lastIndex = 0;
        return p.test(v);
      };
    }
    case 'max_length': {
      const max = d.maximum!;
      // zod counts a string in code points: fewer UTF-16 units than the maximum is surely within it.
      return (v: string | unknown[]) => v.length <= max;
    }
    case 'min_length': {
      const min = d.minimum!;
      // A code point is one or two units: at least 2 × min units is surely at least min code points.
      return (v: string | unknown[]) => (typeof v === 'string' ? v.length >= min * 2 || (min <= 1 && v.length >= min) : v.length >= min);
    }
    case 'greater_than': {
      const x = d.value;
      if (typeof x !== 'number') return undefined;
      return d.inclusive === true ? (v: number) => v >= x : (v: number) => v > x;
    }
    case 'less_than': {
      const x = d.value;
      if (typeof x !== 'number') return undefined;
      return d.inclusive === true ? (v: number) => v <= x : (v: number) => v < x;
    }
    case 'number_format':
      return d.format === 'safeint' ? (v: number) => Number.isSafeInteger(v) : undefined;
    default:
      return undefined;
  }
}

/**
 * A construct this compiler does not know. In check mode zod answers for it; a copy, though, must
 * be plain JSON with well-formed strings, which zod's output need not be, so the event goes the
 * slow way (and a test fails, because the header's checks are meant to compile whole).
 */
function viaZod(schema: AnySchema, mode: Mode): Check {
  if (mode === 'copy') return () => ASK_ZOD;
  const s = schema as unknown as z.ZodType;
  return (v) => (s.safeParse(v).success ? v : ASK_ZOD);
}
