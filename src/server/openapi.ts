import { z } from 'zod';
import { RECORDER_VERSION } from '../recorder/index.js';
import type { RouteSpec } from './context.js';
import { ErrorDoc } from './schemas.js';

type Json = Record<string, unknown>;

// Inputs are documented as sent (io: 'input'): a query parameter is text, parsed by the server.
const schemaOf = (s: z.ZodType): Json => {
  const { $schema: _s, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
};

const ERRORS: Record<string, string> = {
  '400': 'Invalid input: the message names the field.',
  '401': 'No key, or a key that is unknown or revoked.',
  '403': "The key's role may not call this route.",
  '413': 'The body is over the limit.',
};

/** The OpenAPI 3.1 document of the route table, generated from the same zod schemas the server checks with. */
export function openApiDocument(routes: readonly RouteSpec[]): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const parameters: Json[] = [];
    for (const [where, schema] of [
      ['path', r.params],
      ['query', r.query],
    ] as const) {
      if (schema === undefined) continue;
      const js = schemaOf(schema);
      const props = (js['properties'] ?? {}) as Record<string, Json>;
      const required = new Set((js['required'] ?? []) as string[]);
      for (const [name, p] of Object.entries(props))
        parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: p, ...(typeof p['description'] === 'string' ? { description: p['description'] } : {}) });
    }
    const op: Json = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      'x-roles': r.roles === 'public' ? [] : r.roles,
      ...(r.roles === 'public' ? { security: [] } : {}),
      ...(parameters.length === 0 ? {} : { parameters }),
      ...(r.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(r.bodyDoc ?? r.body) } } } }),
      responses: {
        [r.method === 'POST' && r.path !== '/v1/verify' && !r.path.endsWith('/revoke') ? '201' : '200']: {
          description: 'Success',
          content: { [r.produces ?? 'application/json']: { schema: schemaOf(r.response) } },
        },
        ...Object.fromEntries(
          Object.entries(ERRORS)
            .filter(([code]) => (code !== '401' && code !== '403') || r.roles !== 'public')
            .filter(([code]) => code !== '413' || r.body !== undefined)
            .map(([code, description]) => [code, { description, content: { 'application/json': { schema: schemaOf(ErrorDoc) } } }]),
        ),
      },
    };
    paths[path] = { ...(paths[path] ?? {}), [r.method.toLowerCase()]: op };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Witness API', version: RECORDER_VERSION, description: 'Tamper-evident flight recorder for AI agents. Every route lists its roles in x-roles; anything else is refused.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key from `witness keys create`.' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
