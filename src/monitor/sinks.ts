import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { WitnessError } from '../core/index.js';
import type { AlertMessage } from './alerts.js';

/** Where alerts go besides the ledger. A sink retries as it sees fit and throws when it gives up. */
export interface AlertSink {
  readonly name: string;
  send(alert: AlertMessage): Promise<void>;
}

export const SIGNATURE_HEADER = 'x-witness-signature';
export const TIMESTAMP_HEADER = 'x-witness-timestamp';

/**
 * The webhook signature: `sha256=` and the hex HMAC-SHA256, keyed by the shared secret, of
 * `<timestamp>.<body>` — the X-Witness-Timestamp header's value (Unix seconds), a dot, and the raw
 * request body. Binding the time lets a receiver refuse a replayed request (README says how).
 */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookOptions {
  url: string;
  secret: string;
  /** Attempts in all (default 6): the first, then retries after 1, 2, 4, 8, 16 s (× `baseDelayMs / 1000`). */
  attempts?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
}

/** POSTs each alert as JSON, signed; retries network failures, 408, 429 and 5xx answers with exponential backoff. */
export class WebhookSink implements AlertSink {
  readonly name = 'webhook';
  constructor(private readonly options: WebhookOptions) {
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new WitnessError('invalid_argument', `--webhook ${options.url} is not a URL; give e.g. https://alerts.example.com/witness.`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new WitnessError('invalid_argument', `--webhook must be an http(s) URL, not ${u.protocol}; give e.g. https://alerts.example.com/witness.`);
    if (options.secret === '')
      throw new WitnessError('invalid_argument', 'The webhook secret is empty; set the environment variable named by --webhook-secret-env to a long random string the receiver also knows.');
  }

  async send(alert: AlertMessage): Promise<void> {
    const body = JSON.stringify(alert);
    const attempts = this.options.attempts ?? 6;
    const base = this.options.baseDelayMs ?? 1000;
    let last = '';
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, base * 2 ** (i - 1)));
      const timestamp = String(Math.floor(Date.now() / 1000));
      try {
        const res = await fetch(this.options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: webhookSignature(this.options.secret, timestamp, body), 'x-witness-alert-id': alert.id },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return;
        last = `answered ${res.status}`;
        if (res.status !== 408 && res.status !== 429 && res.status < 500) break;
      } catch (e) {
        last = (e as Error).message;
      }
    }
    throw new WitnessError('store_unavailable', `The webhook ${redact(this.options.url)} did not take alert ${alert.code} (${last}); check the receiver.`);
  }
}

/** Runs a shell command per alert with the alert's JSON on its standard input; a non-zero exit is a failure. */
export class CommandSink implements AlertSink {
  readonly name = 'command';
  constructor(
    private readonly command: string,
    private readonly timeoutMs = 30_000,
  ) {
    if (command.trim() === '') throw new WitnessError('invalid_argument', '--command is empty; give the command to run for each alert.');
  }

  send(alert: AlertMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.command, { shell: true, stdio: ['pipe', 'ignore', 'pipe'], timeout: this.timeoutMs });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        if (stderr.length < 2000) stderr += s;
      });
      child.stdin.on('error', () => undefined);
      child.on('error', (e) => reject(new WitnessError('missing_program', `The alert command could not start: ${e.message}.`)));
      child.on('close', (code, signal) => {
        if (code === 0) return resolve();
        const why = signal !== null ? `was stopped by ${signal}` : `exited with ${code}`;
        const said = stderr.trim().split('\n')[0];
        reject(new WitnessError('store_unavailable', `The alert command ${why}${said === undefined || said === '' ? '' : `: ${said}`}.`));
      });
      child.stdin.end(`${JSON.stringify(alert)}\n`);
    });
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '(webhook)';
  }
}
