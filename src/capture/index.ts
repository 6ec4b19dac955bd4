/**
 * src/capture: visual proof made on this machine. Screenshots with Debian's Chromium through
 * playwright-core (one warm browser, a fresh context per capture taken from a small pre-warmed
 * pool, masking before the pixels are stored) and narrated MP4s of a session with ffmpeg and
 * espeak-ng. Nothing is downloaded.
 */
export { CaptureBrowser, type Shot, type ShootOptions, type Viewport } from './browser.js';
export { Capturer, type CaptureRole, type ToolShot } from './capturer.js';
export { changedRegion, type ChangedRegion } from './png-diff.js';
export { CaptureSpec, fillUrl, parseCaptureMap, parseCaptureSpec, type CaptureSpecInput } from './spec.js';
export { programSetting, requireProgram, type Program } from './programs.js';
export { renderSessionVideo, type VideoChapter, type VideoOptions, type VideoResult } from './video/render.js';
export { buildStoryboard, summariseArgs, type Step, type Storyboard } from './video/storyboard.js';
export { parseVtt, toVtt, type Cue } from './video/vtt.js';
export { listVoices, requireVoice, type Voices } from './video/voices.js';
export { escapeHtml } from './video/card.js';
