/**
 * Where S3 copies go and how to reach them: `s3://bucket/prefix` destinations, the endpoint,
 * region, addressing style and credentials, from the variables every S3 tool reads
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION,
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) and the command's flags. Credentials are kept here
 * and handed to the signer only; nothing they are in is ever printed.
 */
import { WitnessError } from '../core/index.js';

export interface S3Location {
  bucket: string;
  /** "" or a prefix ending in "/": object keys are prefix + file name. */
  prefix: string;
  /** `s3://bucket/prefix/`, how the destination is named in messages. */
  label: string;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3Settings {
  /** Origin and base path of the endpoint, no credentials in it: safe to print. */
  endpoint: string;
  region: string;
  pathStyle: boolean;
  credentials?: S3Credentials;
  objectUrl(location: S3Location, name: string): URL;
}

export interface S3Flags {
  endpoint?: string;
  pathStyle?: boolean;
}

// S3's bucket naming rules (3–63 characters, lower case, digits, dots, hyphens); the name becomes a host name label.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
// A conservative key alphabet: no character that URL normalisation, SigV4 encoding or a server's file store treats specially.
const PREFIX_SEGMENT = /^[A-Za-z0-9._=-]+$/;

export function parseS3Url(url: string): S3Location {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/$/, '');
  if (bucket === '') throw new WitnessError('invalid_argument', `${url} names no bucket; write s3://BUCKET/PREFIX.`);
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw new WitnessError('invalid_argument', `${bucket} in ${url} is not an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens).`);
  const segments = path === '' ? [] : path.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') throw new WitnessError('invalid_argument', `The prefix of ${url} has "." or ".." or an empty segment, which URLs rewrite; name a plain prefix.`);
    if (!PREFIX_SEGMENT.test(s)) throw new WitnessError('invalid_argument', `The prefix of ${url} may hold only letters, digits, ".", "_", "=", "-" and "/".`);
  }
  const prefix = segments.length === 0 ? '' : `${segments.join('/')}/`;
  return { bucket, prefix, label: `s3://${bucket}/${prefix}` };
}

export function s3SettingsFrom(env: Readonly<Record<string, string | undefined>>, flags: S3Flags): S3Settings {
  const region = nonEmpty(env['AWS_REGION']) ?? nonEmpty(env['AWS_DEFAULT_REGION']) ?? 'us-east-1';
  if (!/^[a-z0-9-]{1,40}$/.test(region)) throw new WitnessError('invalid_argument', `AWS_REGION ${JSON.stringify(region.slice(0, 40))} is not a region name such as eu-west-3.`);
  const given = nonEmpty(flags.endpoint) ?? nonEmpty(env['AWS_ENDPOINT_URL_S3']) ?? nonEmpty(env['AWS_ENDPOINT_URL']);
  const base = given === undefined ? new URL(`https://s3.${region}.amazonaws.com`) : parseEndpoint(given);
  const basePath = base.pathname.replace(/\/+$/, '');
  const pathStyle = flags.pathStyle === true;
  const accessKeyId = nonEmpty(env['AWS_ACCESS_KEY_ID']);
  const secretAccessKey = nonEmpty(env['AWS_SECRET_ACCESS_KEY']);
  const sessionToken = nonEmpty(env['AWS_SESSION_TOKEN']);
  const credentials = accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) } : undefined;
  return {
    endpoint: `${base.origin}${basePath}`,
    region,
    pathStyle,
    ...(credentials === undefined ? {} : { credentials }),
    objectUrl(location, name) {
      const key = (location.prefix + name).split('/').map(encodeURIComponent).join('/');
      if (pathStyle) return new URL(`${base.origin}${basePath}/${location.bucket}/${key}`);
      return new URL(`${base.protocol}//${location.bucket}.${base.host}${basePath}/${key}`);
    },
  };
}

export function requireCredentials(settings: S3Settings, location: S3Location): S3Credentials {
  if (settings.credentials === undefined) {
    throw new WitnessError('invalid_argument', `Copies to ${location.label} need credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones).`);
  }
  return settings.credentials;
}

function parseEndpoint(given: string): URL {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new WitnessError('invalid_argument', 'The S3 endpoint is not a URL; give one such as https://minio.example:9000.');
  }
  // Never echo an endpoint that carries a password, not even to say it is wrong.
  if (url.username !== '' || url.password !== '')
    throw new WitnessError('invalid_argument', 'The S3 endpoint must not carry a user name or password; give credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.');
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new WitnessError('invalid_argument', `The S3 endpoint is a ${url.protocol} URL; give an http(s) one such as https://minio.example:9000.`);
  if (url.search !== '' || url.hash !== '') throw new WitnessError('invalid_argument', `The S3 endpoint ${url.origin}${url.pathname} must not have a query or fragment.`);
  return url;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}
