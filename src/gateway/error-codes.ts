/**
 * Every JSON-RPC error code the gateway answers with, in one place: a client (or a person reading
 * its logs) can tell a refusal by Witness from an error of the server behind it by these codes.
 * (jsonrpc.ts re-exports the table; it lives apart because era.ts uses it and jsonrpc.ts imports era.ts.)
 */
export const ErrorCode = {
  /** JSON-RPC 2.0: the message is not JSON. */
  ParseError: -32700,
  /** JSON-RPC 2.0: the message is JSON but not an acceptable request (a batch, a misspelled member, a repeated key). */
  InvalidRequest: -32600,
  /** JSON-RPC 2.0: the request's params are wrong (a tools/call without a name, a value the ledger cannot hold exactly). */
  InvalidParams: -32602,
  /** JSON-RPC 2.0: a fault inside the gateway itself; the request was not forwarded. */
  InternalError: -32603,
  /**
   * The MCP SDK's "connection closed" code, which its clients already handle: used where the
   * request is fine but cannot be served now (upstream gone, not authenticated, no session, shutting
   * down, a held call abandoned).
   */
  ConnectionClosed: -32000,
  /** What the MCP SDK answers for an unknown Mcp-Session-Id; SDK clients re-initialize on it. */
  SessionNotFound: -32001,
  /**
   * Witness's own (JSON-RPC's implementation-defined range): the call could not be recorded, so it
   * was not forwarded (the gateway fails closed). Retrying once the ledger is available is safe.
   */
  NotRecorded: -32050,
  /** Witness's own: the message (or HTTP body) is over the gateway's size limit and was refused unread. */
  FrameTooLarge: -32051,
  /** Witness's own: the agent is halted (`witness halt`), so a request other than tools/call was not forwarded. */
  Halted: -32052,
  /** MCP 2026-07-28: a request's standard headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name) disagree with its body, or one is missing. */
  HeaderMismatch: -32020,
  /**
   * MCP 2026-07-28: the protocol version a request claims is not spoken here (`data.supported` names
   * those that are, `data.requested` the claim); also the gateway's answer when client and server
   * share no era (era.ts eraMismatch).
   */
  UnsupportedProtocolVersion: -32022,
} as const;
