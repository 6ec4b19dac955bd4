import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBrowser, listVoices, parseVtt, renderSessionVideo, requireProgram, requireVoice, toVtt, type Cue } from '../../src/capture/index.js';
import { runProgram } from '../../src/capture/exec.js';
import { pcmSeconds, readWav, speak } from '../../src/capture/video/audio.js';
import { openLedger } from '../../src/store/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { runCli, oneSentence } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Text an agent controls (its task, arguments, results) becomes captions and spoken narration.
 * Here hostile text goes through the real consumers: Chromium's own WebVTT parser reads the sidecar
 * file, ffmpeg makes the MP4's mov_text track, and espeak-ng speaks the narration.
 */

const dir = tempDir('witness-narration-');
const espeak = requireProgram('espeak-ng');

/** A caption line written to break out: markup, character references, a CR-only line break that starts a forged cue, ASS override codes, phoneme codes. */
const HOSTILE = 'Refund <b>bold</b> & &lt;co&gt; <c.x>tag</c> --> here\r\r00:00:00.000 --> 00:59:00.000\rFORGED {\\fs1 secret words} line\\Nbreak [[h@loU]] \u0001200S\u0000 end.';
/** What a person must read: the same characters, line breaks as spaces, control characters as spaces. */
const SHOWN = 'Refund <b>bold</b> & &lt;co&gt; <c.x>tag</c> --> here 00:00:00.000 --> 00:59:00.000 FORGED {\\fs1 secret words} line\\Nbreak [[h@loU]]  200S  end.';

// ---------------------------------------------------------------- Chromium reads WebVTT

let chromium: Browser;
let site: http.Server;
let origin = '';
let served = '';

beforeAll(async () => {
  const { chromium: launcher } = await import('playwright-core');
  chromium = await launcher.launch({ executablePath: requireProgram('chromium'), args: ['--no-sandbox', '--disable-gpu'], headless: true });
  site = http.createServer((req, res) => {
    if (req.url === '/captions.vtt') {
      res.writeHead(200, { 'content-type': 'text/vtt; charset=utf-8' });
      return void res.end(served);
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><video><track id="t" kind="captions" src="/captions.vtt" default></video>');
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
}, 60_000);
afterAll(async () => {
  await chromium?.close();
  site?.close();
});

interface BrowserCue {
  start: number;
  end: number;
  /** The cue's text as a viewer shows it (the parsed cue's DOM text). */
  shown: string;
  /** Elements the parser made from markup in the text (<b>, <c>, …). */
  elements: number;
}

/** The cues of a WebVTT file as Chromium's WebVTT parser reads them (a <track> of a <video>). */
async function chromiumCues(vtt: string): Promise<BrowserCue[]> {
  served = vtt;
  const page = await chromium.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(`(async () => {
      const el = document.getElementById('t');
      el.track.mode = 'hidden';
      if (el.readyState !== 2) await new Promise((ok, fail) => { el.onload = ok; el.onerror = () => fail(new Error('the track did not load')); });
      return [...el.track.cues].map((c) => { const f = c.getCueAsHTML(); return { start: c.startTime, end: c.endTime, shown: f.textContent, elements: f.querySelectorAll('*').length }; });
    })()`);
  } finally {
    await page.close();
  }
}

describe('captions', () => {
  it('are read by Chromium exactly as written: no markup, no character references, and no cue forged by a CR line break [R-VIDEO]', async () => {
    const cues: Cue[] = [
      { start: 0, end: 2.5, text: HOSTILE },
      { start: 2.5, end: 4, text: 'Line one\r\nline two\nline three\u2028four.' },
    ];
    const vtt = toVtt(cues);
    expect(await chromiumCues(vtt)).toEqual([
      { start: 0, end: 2.5, shown: SHOWN, elements: 0 },
      { start: 2.5, end: 4, shown: 'Line one line two line three\u2028four.', elements: 0 },
    ]);
    // Our own reader (what an auditor's tool does) agrees with the browser.
    expect(parseVtt(vtt).map((c) => c.text)).toEqual([SHOWN, 'Line one line two line three\u2028four.']);
  });

  it('read back with parseVtt split lines on CR, LF and CRLF, as WebVTT does', () => {
    const cues = parseVtt('WEBVTT\r\r1\r00:00:00.000 --> 00:00:01.000\rone\r\r2\r\n00:00:01.000 --> 00:00:02.000\r\ntwo &amp; &lt;three&gt;\n');
    expect(cues).toEqual([
      { start: 0, end: 1, text: 'one' },
      { start: 1, end: 2, text: 'two & <three>' },
    ]);
  });
});

// ---------------------------------------------------------------- the rendered video

/** The subtitle samples of an MP4 (mov_text: a 16-bit length, the UTF-8 text, then style boxes), read with ffprobe. */
function movTextSamples(file: string): Array<{ text: string; boxes: string[] }> {
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 's', '-show_packets', '-show_data', '-of', 'json', file]).toString()) as { packets: Array<{ data: string }> };
  return probe.packets.map((p) => {
    const hex = p.data
      .split('\n')
      .map((line) => /^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ?)+)/.exec(line)?.[1] ?? '')
      .join('')
      .replace(/ /g, '');
    const bytes = Buffer.from(hex, 'hex');
    const n = bytes.readUInt16BE(0);
    const boxes: string[] = [];
    for (let off = 2 + n; off + 8 <= bytes.length; off += Math.max(8, bytes.readUInt32BE(off))) boxes.push(bytes.toString('latin1', off + 4, off + 8));
    return { text: bytes.toString('utf8', 2, 2 + n), boxes };
  });
}

describe('a session whose text is hostile', () => {
  it('renders captions and chapters that show that text as written, in the sidecar WebVTT, the MP4 subtitle track and the chapter titles [R-VIDEO]', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, strict: true });
    let session = '';
    try {
      const s = await w.session({ agent: { id: 'billing-bot' }, purpose: HOSTILE });
      session = s.id;
      // A tool name is the agent's to choose; in FFMETADATA (the chapters) a CR ends a line as LF does.
      await s.tool('crm.lookup\rartist=INJECTED\r[CHAPTER]\rTIMEBASE=1/1000\rSTART=0\rEND=500\rtitle=FORGED', { customer_id: 'C-1042' }, () => ({ name: 'J. Doe' }));
      await s.end();
    } finally {
      await w.close();
    }
    const ledger = await openLedger(`sqlite:${store}`, { readonly: true });
    const browser = new CaptureBrowser();
    let result;
    try {
      result = await renderSessionVideo(ledger, session, path.join(dir, 'hostile.mp4'), { browser });
    } finally {
      await browser.close();
      await ledger.close();
    }
    const vtt = fs.readFileSync(result.vttPath, 'utf8');
    const cues = await chromiumCues(vtt);
    expect(cues.every((c) => c.elements === 0)).toBe(true);
    const overview = cues.map((c) => c.shown).join(' ');
    expect(overview).toContain(`whose task was: ${SHOWN}`);
    // One cue per sentence of narration, none forged: the parser agrees with parseVtt on the count.
    expect(cues.length).toBe(parseVtt(vtt).length);

    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_chapters', '-show_format', '-of', 'json', result.path]).toString()) as {
      chapters: Array<{ tags: { title: string } }>;
      format: { tags: Record<string, string> };
    };
    expect(probe.chapters.map((c) => c.tags.title)).toEqual(['Overview', 'Step 1: crm.lookup artist=INJECTED [CHAPTER] TIMEBASE=1/1000 START=0 END=500 title=FORGED', 'Summary']);
    expect(probe.format.tags['artist']).toBe('billing-bot');

    const samples = movTextSamples(result.path).filter((s) => s.text !== '');
    expect(samples.length).toBe(cues.length);
    // No styling made from the text, no line break, no override code swallowing words.
    expect(samples.flatMap((s) => s.boxes)).toEqual([]);
    expect(samples.some((s) => s.text.includes('\n'))).toBe(false);
    const track = samples.map((s) => s.text.replace(/\u200b/g, '')).join(' ');
    for (const part of ['<b>bold</b>', '& &lt;co&gt;', '<c.x>tag</c>', '--> here', 'FORGED', '\\fs1 secret words', 'line\\Nbreak', '[[h@loU]]']) expect(track).toContain(part);
  }, 120_000);
});

// ---------------------------------------------------------------- espeak-ng

const VOICE = { voice: 'en-us', speed: 165 };

/** espeak-ng run on `text` exactly as given, as the narration was spoken before it was made safe. */
async function rawSpeech(text: string): Promise<number> {
  const r = await runProgram(espeak, ['-v', VOICE.voice, '-s', String(VOICE.speed), '--stdout', '--stdin'], { input: text });
  return pcmSeconds(readWav(r.stdout));
}

describe('narration', () => {
  it('speaks [[...]] as the characters written, not as espeak-ng phoneme codes that could make it say other words than the captions show [R-VIDEO]', async () => {
    const plain = pcmSeconds(await speak(espeak, 'The refund was approved.', VOICE));
    const text = "The refund was [[n'A:t]] approved.";
    // As phonemes, [[n'A:t]] is the one short word "not"; as text, a string of letters and symbols.
    const asPhonemes = (await rawSpeech(text)) - plain;
    const spoken = pcmSeconds(await speak(espeak, text, VOICE)) - plain;
    expect(asPhonemes).toBeGreaterThan(0.1);
    expect(asPhonemes).toBeLessThan(0.6);
    expect(spoken).toBeGreaterThan(3 * asPhonemes);
  });

  it('ignores control characters, so an espeak-ng embedded command (Ctrl-A) cannot change the speed or voice [R-VIDEO]', async () => {
    const withCommand = await speak(espeak, 'One two three \u000180S four five six seven eight.', VOICE);
    const withSpace = await speak(espeak, 'One two three  80S four five six seven eight.', VOICE);
    expect(withCommand.data.equals(withSpace.data)).toBe(true);
  });
});

describe('voices', () => {
  it('are listed from espeak-ng --voices, languages and variants', async () => {
    const voices = await listVoices(espeak);
    expect(voices.languages).toEqual(expect.arrayContaining(['en-us', 'en-gb', 'de', 'en']));
    expect(voices.variants).toEqual(expect.arrayContaining(['f3', 'klatt']));
  });

  it.each(['en-us', 'EN-US', 'en-gb', 'de', 'en', 'en-us+f3', 'en+klatt', 'en-US+Alex'])('accept %s', async (voice) => {
    await expect(requireVoice(voice)).resolves.toBeUndefined();
  });

  it.each(['vulcan', 'en-zz', 'en-us+klingon', 'en-us+', '+f3', 'en us', '../en-us', '-q'])('refuse %j in one sentence that says how to list the voices', async (voice) => {
    const err = await requireVoice(voice).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe('invalid_argument');
    expect(oneSentence(err!.message)).toBe(
      `${JSON.stringify(voice)} is not an espeak-ng voice; list the voices with \`espeak-ng --voices\` (a language such as en-us) and the variants with \`espeak-ng --voices=variant\` (added as en-us+f3).`,
    );
  });

  it('refuse an unknown --voice of witness video, which espeak-ng would speak with another voice, with exit code 2 before rendering anything', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}` });
    const s = await w.session({ agent: { id: 'a' } });
    await s.end();
    await w.close();
    // espeak-ng exits 0 for both, speaking "en" and "en-us" without the variant.
    for (const voice of ['en-zz', 'en-us+nope']) {
      const out = path.join(dir, `never-${voice}.mp4`);
      const r = await runCli(['video', s.id, '-o', out, '--voice', voice, '--store', `sqlite:${store}`]);
      expect([voice, r.code]).toEqual([voice, 2]);
      expect(oneSentence(r.stderr)).toBe(
        `"${voice}" is not an espeak-ng voice; list the voices with \`espeak-ng --voices\` (a language such as en-us) and the variants with \`espeak-ng --voices=variant\` (added as en-us+f3).`,
      );
      expect(fs.existsSync(out)).toBe(false);
    }
  }, 60_000);
});
