/**
 * src/gateway: the MCP audit gateway. The relay (one MCP session: recording, policy, approval
 * holds, pass-through) and its transports: the stdio proxy (`witness proxy`) and the Streamable
 * HTTP gateway (`witness gateway`). Agent identity always comes from the gateway's configuration.
 */
export { StdioProxy, runStdioProxy, type ProxyEndReason, type ProxyOutcome, type StdioProxyOptions } from './stdio-proxy.js';
export { McpRelay, NOT_RECORDED, FRAME_TOO_LARGE, type RelayEnd, type RelayOptions, type RelayPorts } from './relay.js';
export { DEFAULT_APPROVAL_SETTINGS, type ApprovalSettings } from './approval-desk.js';
export { LineSplitter, Wire, classify, errorMessage, errorResponse, idKey, resultMessage, resultResponse, sniffId, toolErrorResult, type Frame, type JsonRpcId } from './jsonrpc.js';
export { startHttpGateway, GATEWAY_STREAM, type HttpGateway, type HttpGatewayOptions } from './http-gateway.js';
export { loadGatewayConfig, parseGatewayConfig, parseListen, DEFAULT_LISTEN, type GatewayConfig, type GatewayServerConfig, type GatewayAgentConfig, type UpstreamConfig } from './http-config.js';
export { KeyRing, keySha256, keyFingerprint, newGatewayKey, KEY_PREFIX, type AuthResult, type AuthenticatedAgent } from './http-auth.js';
export { StdioUpstream, type StdioUpstreamOptions, type UpstreamExit } from './upstream-stdio.js';
export { HttpUpstream, type HttpUpstreamOptions } from './upstream-http.js';
export { SESSION_HINT_META, LEGACY_VERSIONS, classifyPost, servedVersions, type Classified } from './http-modern.js';
export { postModern, type ModernPostOptions, type ModernPostOutcome } from './upstream-modern.js';
