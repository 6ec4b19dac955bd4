import { z } from 'zod';
import { APPROVER_NAME, parseVerifierKey } from '../core/index.js';
import { ConditionSyntaxError, parseCondition, type Condition } from './conditions.js';
import { globProblem } from './glob.js';
import { EFFECTS, MODES } from './types.js';

/**
 * The policy file, version 1, as zod schemas. Every object is strict: an unknown key is an error,
 * because a typo (`efect:`, `tools:`) must never silently weaken a policy. Messages here are
 * predicate phrases ("must be …"); parse.ts prefixes the file, the line and the field path.
 */

export const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const TEXT_MAX = 2048;

const text = z.string().min(1).max(TEXT_MAX);

/** A glob or a non-empty list of globs, normalised to a list; each glob is checked by glob.ts. */
const Globs = z.union([z.string(), z.array(z.string()).min(1)], { error: 'must be a glob or a list of globs' }).transform((v, ctx) => {
  const list = Array.isArray(v) ? v : [v];
  list.forEach((g, i) => {
    const problem = globProblem(g);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: Array.isArray(v) ? [i] : [] });
  });
  return list;
});

/** Conditions: one string or a list of strings (all must hold), parsed now so mistakes name their line. */
const When = z.union([z.string(), z.array(z.string()).min(1)], { error: 'must be a condition or a list of conditions' }).transform((v, ctx): { text: string[]; condition: Condition | undefined } => {
  const list = Array.isArray(v) ? v : [v];
  const parsed: Condition[] = [];
  list.forEach((src, i) => {
    try {
      parsed.push(parseCondition(src));
    } catch (e) {
      if (!(e instanceof ConditionSyntaxError)) throw e;
      ctx.addIssue({
        code: 'custom',
        message: `is not a valid condition: ${e.message} (at character ${e.offset + 1})`,
        path: Array.isArray(v) ? [i] : [],
        params: { offset: e.offset },
      });
    }
  });
  const condition = parsed.length === 0 ? undefined : parsed.length === 1 ? parsed[0] : { op: 'and' as const, items: parsed };
  return { text: list, condition };
});

export const MatchSchema = z.strictObject({
  agent: Globs.optional(),
  server: Globs.optional(),
  tool: Globs.optional(),
});

export const RuleSchema = z
  .strictObject({
    id: z.string().regex(RULE_ID, 'must start with a letter or digit and hold only letters, digits and . _ : / - (at most 128)'),
    description: text.optional(),
    match: MatchSchema.optional(),
    when: When.optional(),
    effect: z.enum(EFFECTS),
    reason: text.optional(),
    hide: z.boolean().optional(),
    /** Ids from the top-level `approvers:` list: who may release this rule's calls. */
    approvers: z.array(z.string().min(1).max(128)).min(1).max(1000).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.approvers !== undefined && r.effect !== 'review') {
      ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'applies only to a review rule, since only review holds a call for a person' });
    }
    // Hiding is for tools an agent may *never* call; a conditional or non-deny rule cannot know that.
    if (r.hide === true && (r.effect !== 'deny' || r.when !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['hide'], message: 'can be true only on a deny rule without when, since only such a rule forbids a tool outright' });
    }
  });

/**
 * A person who may release held calls: their name and their Ed25519 verifier key. The key names
 * its holder, and must name this approver, so a key pasted under the wrong person is caught here.
 */
export const ApproverSchema = z
  .strictObject({
    id: z.string().regex(APPROVER_NAME, 'must be a name of letters, digits and . _ @ - (at most 128), as in alice@acme.example'),
    key: z.string().min(1).max(1024),
  })
  .superRefine((a, ctx) => {
    let name: string;
    try {
      name = parseVerifierKey(a.key).name;
    } catch (e) {
      const why = (e instanceof Error ? e.message : String(e)).replace(/\.$/, '');
      ctx.addIssue({ code: 'custom', path: ['key'], message: `is not an approver public key (<name>+<hash>+<base64>, as witness approver init prints it): ${why}` });
      return;
    }
    if (name !== a.id) ctx.addIssue({ code: 'custom', path: ['key'], message: `belongs to ${name}, not ${a.id}; give the public key that ${a.id} made with witness approver init` });
  });

export const PolicyFileSchema = z
  .strictObject({
    version: z.literal(1),
    default: z.enum(EFFECTS),
    mode: z.enum(MODES).optional(),
    approvers: z
      .array(ApproverSchema)
      .max(1000)
      .optional()
      .superRefine((list, ctx) => {
        if (list === undefined) return;
        const ids = new Map<string, number>();
        const keys = new Map<string, number>();
        list.forEach((a, i) => {
          const first = ids.get(a.id);
          if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${a.id}" is already the id of approvers[${first}]` });
          else ids.set(a.id, i);
          const firstKey = keys.get(a.key);
          if (firstKey !== undefined && first === undefined) ctx.addIssue({ code: 'custom', path: [i, 'key'], message: `is already the key of approvers[${firstKey}]` });
          else keys.set(a.key, i);
        });
      }),
    rules: z
      .array(RuleSchema)
      .max(10_000)
      .optional()
      .superRefine((rules, ctx) => {
        if (rules === undefined) return;
        const seen = new Map<string, number>();
        rules.forEach((r, i) => {
          const first = seen.get(r.id);
          if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${r.id}" is already the id of rules[${first}]` });
          else seen.set(r.id, i);
        });
      }),
  })
  .superRefine((f, ctx) => {
    // A rule may only name approvers the file lists, with their keys.
    const listed = new Set((f.approvers ?? []).map((a) => a.id));
    (f.rules ?? []).forEach((r, i) => {
      (r.approvers ?? []).forEach((id, j) => {
        if (!listed.has(id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'approvers', j], message: `"${id}" is not listed under approvers` });
      });
    });
  });

export type PolicyFile = z.output<typeof PolicyFileSchema>;

/** The keys each object may have, for "did you mean" suggestions. */
export const KNOWN_KEYS = {
  policy: Object.keys(PolicyFileSchema.shape),
  rule: Object.keys(RuleSchema.shape),
  match: Object.keys(MatchSchema.shape),
  approver: Object.keys(ApproverSchema.shape),
} as const;
