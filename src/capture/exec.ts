import { spawn } from 'node:child_process';

export interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program without a shell, feeding `input` on stdin; never rejects for a non-zero exit. */
export function runProgram(file: string, args: readonly string[], options: { input?: string | Buffer; cwd?: string; onStderr?: (chunk: string) => void } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(options.cwd === undefined ? {} : { cwd: options.cwd }) });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      const s = c.toString();
      if (stderr.length < 1_000_000) stderr += s;
      options.onStderr?.(s);
    });
    child.once('error', reject);
    child.stdin.on('error', () => undefined);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(options.input ?? '');
  });
}
