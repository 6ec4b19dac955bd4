import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { serverFixture, type ServerFixture } from './fixture.js';

/** The personal datum the mail session's tool call names as its resource, which a developer sees masked. */
export const EMAIL = 'mailto:jane.doe@example.com';

export interface MailSessionFixture {
  f: ServerFixture;
  /** The mail session's stream id (fresh each time). */
  sess: string;
}

/**
 * The server fixture (test/server/fixture.ts) plus one session of `mail-bot` whose tool call names
 * EMAIL as its resource, read once by the auditor, so `witness.audit-access` holds a record naming
 * the auditor and the session. For the tests of what a developer may not see of Witness's own
 * streams and of masked header fields, through the API and through the viewer.
 */
export async function mailSessionFixture(dir: string): Promise<MailSessionFixture> {
  const f = await serverFixture(dir);
  const sess = `mail-${randomUUID()}`;
  await f.ledger.append([
    { stream: sess, kind: 'session.start', agent: { id: 'mail-bot' }, data: { purpose: 'x' } },
    { stream: sess, kind: 'tool.call', agent: { id: 'mail-bot' }, resource: EMAIL, action: 'send', data: { tool: 'send', arguments: { body: 'hello' } } },
  ]);
  // An auditor's read puts a record on the access stream naming the auditor and the session.
  expect((await f.call('GET', `/v1/sessions/${encodeURIComponent(sess)}`, { key: f.keys.auditor })).status).toBe(200);
  return { f, sess };
}
