import type { StoredEvent } from '../core/index.js';

/**
 * One Witness event as an OCSF event, for SIEMs that read the Open Cybersecurity Schema Framework.
 *
 * Mapped to OCSF 1.8.0 (the schema repository's tag 1.8.0: events/base_event.json,
 * events/application/api_activity.json and application_error.json, objects/metadata.json, actor,
 * api, network_endpoint, user, ai_model). Which Witness kind becomes which class:
 *
 *   tool.call, tool.result  API Activity (class_uid 6003, category_uid 6): api.operation is the
 *                           tool, activity_id read from the tool's verb (see apiActivity)
 *   llm.call                API Activity (6003), activity Other (99), with ai_model (the
 *                           ai_operation profile) when the provider is recorded
 *   error                   Application Error (6008), activity General Error (1)
 *   every other kind        Base Event (class_uid 0, category_uid 0), activity Other (99),
 *                           activity_name = the Witness kind
 *
 * The attributes OCSF 1.8.0 requires, which every line carries (OCSF_REQUIRED): activity_id,
 * category_uid, class_uid, metadata.product (name), metadata.version, severity_id, time (ms since
 * the epoch), type_uid (class_uid * 100 + activity_id); for API Activity also actor (at least one
 * of user, app_name, session), api.operation and src_endpoint (at least one of name, hostname).
 *
 * `metadata.profiles` names the profiles whose attributes a line uses: `host` for the `actor` of a
 * Base Event or Application Error (those classes have it only through that profile), and
 * `ai_operation` for an llm.call's `ai_model`.
 *
 * Nothing Witness knows is lost: `unmapped.witness` holds the stored event exactly as the ledger
 * hashed it (header, data, salt, hash — so its hash can be recomputed), its leaf, the RFC 6962
 * inclusion proof to the newest checkpoint and that checkpoint's size and root.
 */
export const OCSF_VERSION = '1.8.0';

/** Attribute paths every exported OCSF line carries, by class_uid (documented in the README). */
export const OCSF_REQUIRED: Record<number, readonly string[]> = {
  0: ['activity_id', 'category_uid', 'class_uid', 'metadata.product.name', 'metadata.version', 'severity_id', 'time', 'type_uid'],
  6003: ['activity_id', 'category_uid', 'class_uid', 'metadata.product.name', 'metadata.version', 'severity_id', 'time', 'type_uid', 'actor', 'api.operation', 'src_endpoint'],
  6008: ['activity_id', 'category_uid', 'class_uid', 'metadata.product.name', 'metadata.version', 'severity_id', 'time', 'type_uid', 'message'],
};

/** What travels with every event under unmapped.witness besides the event itself. */
export interface OcsfContext {
  leaf: number;
  /** Inclusion proof nodes (hex) of `leaf` in the tree of `checkpoint.size` leaves. */
  proof: string[];
  /** The checkpoint the proof leads to: its size, root (hex) and signed note (which the ledger's key opens; its root is `root`). */
  checkpoint: { size: number; root: string; note: string };
  /** The ledger's origin, which binds every stream's genesis. */
  origin: string;
  product: { name: string; vendor_name: string; version?: string };
}

type Json = Record<string, unknown>;

const STATUS = { unknown: 0, success: 1, failure: 2, other: 99 } as const;

/** activity_id of API Activity from a tool's name or MCP method: the first verb found wins. */
const VERBS: ReadonlyArray<[RegExp, 1 | 2 | 3 | 4]> = [
  [/^(get|read|list|search|find|fetch|query|lookup|view|describe|show|check|count|download|browse|inspect)$/, 2],
  [/^(create|add|insert|new|post|upload|send|submit|issue|register|open|make|generate|start)$/, 1],
  [/^(update|set|edit|modify|patch|change|rename|move|write|put|replace|apply|approve|assign|refund|charge|pay|transfer|close|enable|disable)$/, 3],
  [/^(delete|remove|drop|destroy|purge|revoke|cancel|erase|unlink|clear)$/, 4],
];
const ACTIVITY_NAMES: Record<number, string> = { 0: 'Unknown', 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' };

/**
 * The CRUD activity of an API call named `name` (a tool such as `billing.refund`, `get_customer`,
 * `crm.lookup`, or an MCP method such as `resources/read`): its words are split on `.`, `_`, `-`,
 * `/`, spaces and camelCase, and the first word that is a known verb decides; none → Other (99).
 */
export function apiActivity(name: string): 1 | 2 | 3 | 4 | 99 {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
  for (const w of words) for (const [re, id] of VERBS) if (re.test(w)) return id;
  return 99;
}

/** status_id, status and severity_id from the event's outcome (and kind). */
function statusOf(e: StoredEvent): { status_id: number; status: string; status_detail?: string; severity_id: number } {
  const severity = severityOf(e);
  switch (e.outcome) {
    case 'success':
      return { status_id: STATUS.success, status: 'Success', severity_id: severity };
    case 'error':
    case 'denied':
    case 'expired':
      return { status_id: STATUS.failure, status: 'Failure', status_detail: e.outcome, severity_id: severity };
    case 'pending':
      return { status_id: STATUS.other, status: 'pending', severity_id: severity };
    default:
      return { status_id: STATUS.unknown, status: 'Unknown', severity_id: severity };
  }
}

/**
 * severity_id: 1 Informational, 2 Low (an error or an expired request), 3 Medium (a denial, by
 * policy or a person), 4 High (a person halted an agent); an alert carries its own severity
 * (info 1, warning 3, critical 5).
 */
function severityOf(e: StoredEvent): number {
  if (e.kind === 'alert') {
    const s = e.data?.['severity'];
    return s === 'critical' ? 5 : s === 'warning' ? 3 : 1;
  }
  if (e.kind === 'human.halt') return 4;
  if (e.outcome === 'denied' || e.policy?.decision === 'deny') return 3;
  if (e.outcome === 'error' || e.outcome === 'expired' || e.kind === 'error') return 2;
  return 1;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Drops undefined members, so absent Witness fields are absent OCSF attributes (not null). */
function compact(o: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** The OCSF event for `e` (its payload as given: null when withheld or purged). */
export function toOcsf(e: StoredEvent, ctx: OcsfContext): Json {
  const data = e.data;
  const time = Date.parse(e.ts);
  let classUid: number;
  let categoryUid: number;
  let activityId: number;
  let activityName: string;
  const extra: Json = {};

  const user = e.principal !== undefined ? { uid: e.principal.id, name: e.principal.id } : e.user !== undefined ? { uid: e.user, name: e.user } : undefined;
  const actor = compact({
    app_name: e.agent.id,
    user,
    session: { uid: e.stream, ...(e.agent.credential === undefined ? {} : { credential_uid: e.agent.credential }) },
  });
  const srcEndpoint = compact({ name: e.agent.id, hostname: e.source?.host });

  if (e.kind === 'tool.call' || e.kind === 'tool.result' || e.kind === 'llm.call') {
    classUid = 6003;
    categoryUid = 6;
    if (e.kind === 'llm.call') {
      const model = str(data?.['model']);
      const operation = model === undefined ? 'llm.call' : `llm.call ${model}`;
      activityId = 99;
      activityName = 'Other';
      extra['api'] = compact({ operation, service: { name: str(data?.['provider']) ?? e.resource ?? 'llm' } });
      const provider = str(data?.['provider']);
      if (model !== undefined && provider !== undefined) {
        extra['ai_model'] = compact({ name: str(data?.['response_model']) ?? model, ai_provider: provider });
      }
    } else {
      const tool = str(data?.['tool']) ?? e.action ?? e.resource ?? e.kind;
      const method = str(data?.['method']);
      activityId = apiActivity(method ?? tool);
      if (activityId === 99 && method !== undefined) activityId = apiActivity(tool);
      activityName = ACTIVITY_NAMES[activityId]!;
      const server = str(data?.['server']) ?? e.resource;
      const jsonrpcId = data?.['jsonrpc_id'];
      extra['api'] = compact({
        operation: tool,
        service: server === undefined ? undefined : { name: server },
        request: typeof jsonrpcId === 'string' || typeof jsonrpcId === 'number' ? { uid: String(jsonrpcId) } : undefined,
      });
    }
    extra['actor'] = actor;
    extra['src_endpoint'] = srcEndpoint;
    if (e.resource !== undefined) extra['resources'] = [{ name: e.resource, type: e.kind === 'llm.call' ? 'model' : 'tool' }];
  } else if (e.kind === 'error') {
    classUid = 6008;
    categoryUid = 6;
    activityId = 1;
    activityName = 'General Error';
    extra['actor'] = actor;
    extra['message'] = str(data?.['message']) ?? (data === null ? 'error (message withheld or purged)' : 'error');
  } else {
    classUid = 0;
    categoryUid = 0;
    activityId = 99;
    activityName = e.kind;
    extra['actor'] = actor;
    extra['message'] = `${e.kind}${e.action === undefined ? '' : ` ${e.action}`}${e.resource === undefined ? '' : ` on ${e.resource}`}`;
  }

  const status = statusOf(e);
  // API Activity has `actor` of its own; Base Event and Application Error take it from the host profile.
  const profiles = [...(extra['ai_model'] !== undefined ? ['ai_operation'] : []), ...(classUid === 6003 ? [] : ['host'])];
  return compact({
    activity_id: activityId,
    activity_name: activityName,
    category_uid: categoryUid,
    class_uid: classUid,
    type_uid: classUid * 100 + activityId,
    time,
    severity_id: status.severity_id,
    status_id: status.status_id,
    status: status.status,
    status_detail: status.status_detail,
    metadata: compact({
      version: OCSF_VERSION,
      product: compact({ name: ctx.product.name, vendor_name: ctx.product.vendor_name, version: ctx.product.version }),
      uid: e.id,
      original_time: e.ts,
      logged_time: e.received_ts === undefined ? undefined : Date.parse(e.received_ts),
      event_code: e.kind,
      correlation_uid: e.stream,
      sequence: ctx.leaf,
      tenant_uid: e.tenant,
      log_name: ctx.origin,
      profiles: profiles.length === 0 ? undefined : profiles,
    }),
    ...extra,
    unmapped: {
      witness: {
        event: e,
        leaf: ctx.leaf,
        inclusion_proof: { leaf: ctx.leaf, tree_size: ctx.checkpoint.size, hashes: ctx.proof },
        checkpoint: ctx.checkpoint,
        origin: ctx.origin,
      },
    },
  });
}
