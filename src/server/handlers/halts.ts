import { z } from 'zod';
import { haltState, haltedAgents, recordHalt, recordResume } from '../../approvals/index.js';
import { WitnessError } from '../../core/index.js';
import { recorderFor } from '../approve.js';
import type { RouteContext, RouteSpec } from '../context.js';
import type { Caller } from '../keys.js';
import { SESSION_VAR, type PersonSession } from '../person-session.js';
import type { Role } from '../roles.js';
import { PATHS, renderHaltsPage, type Chrome } from '../views/index.js';
import { html } from './pages.js';

/**
 * The stop button in the server (approvals/halt.ts holds the protocol): a person with the admin or
 * approver role halts or resumes an agent over the API or from the viewer's "Stop" page, recorded
 * under their own identity (the key's or sign-in's name, never a name from the body). Approvers,
 * auditors and admins may read who is halted; every other role is refused by the route table.
 */

/** Who may press the button. */
export const HALT_ROLES: readonly Role[] = ['admin', 'approver'];
/** Who may see who is halted. */
const HALT_READERS: readonly Role[] = ['approver', 'auditor', 'admin'];

/** The person acting, as the route table authenticated them. */
function actorOf(caller: Caller): { actor: string; via: string } {
  // An OpenID Connect person has no API key: their id is `oidc:<subject>` (person-session.ts).
  const how = caller.keyId.startsWith('oidc:') ? `OpenID Connect ${caller.keyId.slice(5)}` : `API key ${caller.keyId}`;
  return { actor: caller.name ?? `key ${caller.keyId}`, via: `witness serve, ${how}` };
}

const AgentParam = z.strictObject({ agent: z.string().min(1).max(512) });
const HaltBody = z.strictObject({ reason: z.string().max(4096) });
const ResumeBody = z.strictObject({ reason: z.string().max(4096).optional() });
const HaltStateDoc = z.object({
  agent: z.string(),
  halted: z.boolean(),
  already: z.boolean().optional(),
  event: z.string().optional().describe('The human.halt (or, for a resume, human.resume) event id.'),
  halt: z.string().optional().describe('For a resume: the halt it lifted.'),
  actor: z.string().optional(),
  reason: z.string().optional(),
  ts: z.string().optional(),
});

async function halt(ctx: RouteContext<{ agent: string }, unknown, { reason: string }>): Promise<Response> {
  const { halt: h, already } = await recordHalt(recorderFor(ctx.ledger), { agent: ctx.params.agent, reason: ctx.body.reason, recorder: 'server', ...actorOf(ctx.caller!) });
  return ctx.c.json({ agent: h.agent, halted: true, already, event: h.id, actor: h.actor, reason: h.reason, ts: h.ts }, already ? 200 : 201);
}

async function resume(ctx: RouteContext<{ agent: string }, unknown, { reason?: string }>): Promise<Response> {
  const r = await recordResume(recorderFor(ctx.ledger), {
    agent: ctx.params.agent,
    recorder: 'server',
    ...(ctx.body.reason === undefined ? {} : { reason: ctx.body.reason }),
    ...actorOf(ctx.caller!),
  });
  return ctx.c.json({ agent: ctx.params.agent, halted: false, event: r.id, halt: r.halt.id }, 201);
}

async function state(ctx: RouteContext<{ agent: string }>): Promise<Response> {
  const s = await haltState(ctx.ledger, ctx.params.agent);
  return ctx.c.json(s.halted ? { agent: s.agent, halted: true, event: s.halt.id, actor: s.halt.actor, reason: s.halt.reason, ts: s.halt.ts } : { agent: s.agent, halted: false });
}

function sessionOf(ctx: RouteContext): PersonSession | undefined {
  return ctx.c.get(SESSION_VAR) as PersonSession | undefined;
}

async function haltsPage(ctx: RouteContext): Promise<Response> {
  const caller = ctx.caller!;
  const s = sessionOf(ctx);
  const flash = s?.flash;
  if (s !== undefined) delete s.flash;
  const halted = await haltedAgents(ctx.ledger);
  await ctx.recordAccess({ count: halted.length });
  const chrome: Chrome = { user: { name: caller.name ?? `key ${caller.keyId}`, role: caller.role }, active: 'halts', ...(s === undefined ? {} : { csrfToken: s.csrfToken }) };
  return html(ctx.c, renderHaltsPage({ chrome, halted, canAct: HALT_ROLES.includes(caller.role), ...(flash === undefined ? {} : { flash }) }));
}

const HaltForm = z.object({
  agent: z.string().trim().min(1, 'needs the agent id').max(512),
  action: z.enum(['halt', 'resume']),
  reason: z.string().max(4096).optional(),
});

async function haltFromPage(ctx: RouteContext): Promise<Response> {
  const parsed = HaltForm.safeParse(await ctx.c.req.parseBody());
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new WitnessError('invalid_argument', `The stop form's ${i?.path.join('.') ?? 'fields'} ${i?.message ?? 'is not valid'}; reload the page and try again.`);
  }
  const f = parsed.data;
  const s = sessionOf(ctx);
  const reason = f.reason === undefined || f.reason.trim() === '' ? undefined : f.reason.trim();
  const w = recorderFor(ctx.ledger);
  const who = actorOf(ctx.caller!);
  try {
    if (f.action === 'halt') {
      const { halt: h, already } = await recordHalt(w, { agent: f.agent, reason: reason ?? '', recorder: 'server', ...who });
      const text = already
        ? `Agent ${h.agent} was already halted by ${h.actor} at ${h.ts}; nothing was recorded.`
        : `Halted agent ${h.agent} as ${h.actor}; every gateway refuses its calls until it is resumed.`;
      if (s !== undefined) s.flash = { kind: 'ok', text };
    } else {
      const r = await recordResume(w, { agent: f.agent, recorder: 'server', ...(reason === undefined ? {} : { reason }), ...who });
      if (s !== undefined) s.flash = { kind: 'ok', text: `Resumed agent ${f.agent} (halted by ${r.halt.actor}) as ${who.actor}.` };
    }
  } catch (e) {
    if (!(e instanceof WitnessError) || s === undefined) throw e;
    s.flash = { kind: 'error', text: e.message };
  }
  return ctx.c.redirect(PATHS.halts, 303);
}

/** The stop button's rows of the route table (routes.ts). */
export function haltRoutes(): RouteSpec[] {
  return [
    {
      method: 'GET',
      path: PATHS.halts,
      roles: HALT_READERS,
      summary: 'Stop page: the agents halted now, by whom and why, with a form to halt or resume an agent (admins and approvers).',
      page: true,
      response: z.string(),
      produces: 'text/html',
      access: 'view',
      handler: haltsPage,
    },
    {
      method: 'POST',
      path: PATHS.halts,
      roles: HALT_ROLES,
      summary: 'Halt or resume an agent as the signed-in person (form: csrf, agent, action = halt | resume, reason).',
      page: true,
      response: z.string(),
      produces: 'text/html',
      handler: haltFromPage,
    },
    {
      method: 'GET',
      path: '/v1/agents/:agent/halt',
      roles: HALT_READERS,
      summary: 'Whether an agent is halted now, by whom, why and since when.',
      params: AgentParam,
      query: z.strictObject({}),
      response: HaltStateDoc,
      access: 'view',
      handler: state as RouteSpec['handler'],
    },
    {
      method: 'POST',
      path: '/v1/agents/:agent/halt',
      roles: HALT_ROLES,
      summary:
        "Halt an agent as the caller (recorded as human.halt with the caller's name and the reason): every gateway refuses its calls within a second until it is resumed. 200 with `already` when it was halted already (nothing recorded).",
      params: AgentParam,
      body: HaltBody,
      response: HaltStateDoc,
      acceptsSession: true,
      handler: halt as RouteSpec['handler'],
    },
    {
      method: 'POST',
      path: '/v1/agents/:agent/resume',
      roles: HALT_ROLES,
      summary: 'Lift the halt on an agent as the caller (recorded as human.resume naming the halt); 409 when it is not halted.',
      params: AgentParam,
      body: ResumeBody,
      response: HaltStateDoc,
      acceptsSession: true,
      handler: resume as RouteSpec['handler'],
    },
  ];
}
