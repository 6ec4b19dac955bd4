import { z } from 'zod';

/**
 * Who may do what, coarsely: the route table (routes.ts) lists, per route, the roles allowed;
 * everything else is denied.
 *
 * - agent: ingests events as its own identity (the key's agent), reads nothing.
 * - developer: reads events with personal data masked and secrets never shown (mask.ts).
 * - approver: pending approvals and decisions as itself (routes come with the approvals module).
 * - auditor: reads everything, verifies, exports; writes nothing.
 * - admin: keys and configuration; reads no audit data.
 */
export const ROLES = ['agent', 'developer', 'approver', 'auditor', 'admin'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;
