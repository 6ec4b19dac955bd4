import { Readable } from 'node:stream';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../errors.js';

/**
 * Types served as themselves: media a browser shows without running anything, and plain data.
 * Everything else (HTML, SVG, XML, JavaScript, anything unknown) is served as
 * application/octet-stream, so a recorded page or an SVG with a script is never rendered from
 * this origin; the sandbox CSP and `nosniff` hold even if a browser disagrees.
 */
const SAFE_TYPES: ReadonlySet<string> = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'video/mp4',
  'video/webm',
  'audio/mpeg',
  'audio/wav',
  'audio/ogg',
  'audio/webm',
  'text/vtt',
  'text/plain',
  'application/json',
  'application/pdf',
]);

const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
  'text/vtt': 'vtt',
  'text/plain': 'txt',
  'application/json': 'json',
  'application/pdf': 'pdf',
};

export function servedType(mime: string | undefined): string {
  const base = (mime ?? '').split(';')[0]!.trim().toLowerCase();
  return SAFE_TYPES.has(base) ? base : 'application/octet-stream';
}

/** Magic numbers of what Witness itself stores, for a store that does not say the type. */
function sniff(head: Uint8Array): string | undefined {
  const starts = (...b: number[]) => b.every((x, i) => head[i] === x);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (head.length > 11 && Buffer.from(head.subarray(4, 8)).toString('latin1') === 'ftyp') return 'video/mp4';
  if (starts(0x1a, 0x45, 0xdf, 0xa3)) return 'video/webm';
  if (Buffer.from(head.subarray(0, 6)).toString('latin1') === 'WEBVTT') return 'text/vtt';
  return undefined;
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range; several are answered whole, as RFC 9110 allows). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

function headers(sha256: string, type: string, length: number): Record<string, string> {
  const ext = EXTENSIONS[type] ?? 'bin';
  return {
    'Content-Type': type,
    'Content-Length': String(length),
    'Content-Disposition': `attachment; filename="${sha256}.${ext}"`,
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; sandbox",
    'Cache-Control': 'private, no-store',
    'Accept-Ranges': 'bytes',
  };
}

/**
 * GET /v1/artifacts/:sha256: read from the store as it is sent (never held whole), `Range`
 * honoured (206, or 416 past the end). The type is the one stored with the artifact, served only
 * when it is in SAFE_TYPES; a store that kept no type gets the magic numbers' word for it.
 */
export async function getArtifact(ctx: RouteContext<{ sha256: string }>): Promise<Response> {
  const { sha256 } = ctx.params;
  const l = ctx.ledger;
  const info = await l.artifactInfo(sha256);
  if (info === undefined) return notFound(ctx, sha256);
  const range = parseRange(ctx.c.req.header('range'), info.bytes);
  if (range === 'unsatisfiable') {
    return new Response(JSON.stringify({ error: { code: 'invalid_argument', message: `The range is outside the artifact's ${info.bytes} bytes; ask for bytes within it.` } }), {
      status: 416,
      headers: { 'Content-Type': 'application/json', 'Content-Range': `bytes */${info.bytes}`, 'X-Content-Type-Options': 'nosniff' },
    });
  }
  let type = servedType(info.mime);
  if (info.mime === undefined && info.bytes > 0) {
    const head = await l.readArtifactStream(sha256, { start: 0, end: 15 });
    const chunks: Buffer[] = [];
    if (head !== undefined) for await (const c of head) chunks.push(c as Buffer);
    type = servedType(sniff(Buffer.concat(chunks)));
  }
  const stream = await l.readArtifactStream(sha256, range ?? {});
  if (stream === undefined) return notFound(ctx, sha256);
  try {
    await ctx.recordAccess({ count: range === undefined ? info.bytes : range.end - range.start + 1, resource: sha256 });
  } catch (e) {
    stream.destroy();
    throw e;
  }
  const body = Readable.toWeb(stream) as ReadableStream<Uint8Array>;
  if (range === undefined) return new Response(body, { status: 200, headers: headers(sha256, type, info.bytes) });
  return new Response(body, { status: 206, headers: { ...headers(sha256, type, range.end - range.start + 1), 'Content-Range': `bytes ${range.start}-${range.end}/${info.bytes}` } });
}

function notFound(ctx: RouteContext, sha256: string): Response {
  return errorResponse(ctx.c, 'not_found', `The store holds no artifact ${sha256}; check the digest in the event's artifacts list.`);
}
