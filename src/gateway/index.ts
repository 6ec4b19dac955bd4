/**
 * src/gateway: the MCP audit gateway. For now the stdio proxy (`witness proxy`): per-agent
 * identity from its own configuration, tool calls recorded before they are forwarded (fail
 * closed), policy enforced before the server sees a call, everything else passed through.
 */
export { StdioProxy, runStdioProxy, NOT_RECORDED, type ProxyEndReason, type ProxyOutcome, type StdioProxyOptions } from './stdio-proxy.js';
export { LineSplitter, classify, errorResponse, idKey, resultResponse, toolErrorResult, type Frame, type JsonRpcId } from './jsonrpc.js';
