export { recordAnthropic } from './anthropic.js';
export { recordOpenAI } from './openai.js';
export { toolCallParent } from './record-call.js';
