import type { Condition } from './conditions.js';

export const EFFECTS = ['allow', 'deny', 'review'] as const;
/** What a rule (or the default) says about a call. */
export type Effect = (typeof EFFECTS)[number];

export const MODES = ['enforce', 'shadow'] as const;
/** `shadow`: evaluate and report every decision, enforce none (a dry run). */
export type Mode = (typeof MODES)[number];

/** One rule of a loaded policy, normalised: omitted globs are `['*']`, `when` is always a list. */
export interface PolicyRule {
  readonly id: string;
  readonly description: string | undefined;
  readonly match: {
    readonly agent: readonly string[];
    readonly server: readonly string[];
    readonly tool: readonly string[];
  };
  /** The conditions as written; all must hold. Empty when the rule has no `when`. */
  readonly when: readonly string[];
  /** The parsed conditions, `and`-ed; undefined when the rule has no `when`. */
  readonly condition: Condition | undefined;
  readonly effect: Effect;
  readonly reason: string | undefined;
  readonly hide: boolean;
  /** Review rules only: the ids of the approvers who may release its calls; undefined = every approver listed. */
  readonly approvers: readonly string[] | undefined;
  /** 1-based line of the rule in the policy file, for messages. */
  readonly line: number;
}

/** A person who may release held calls, identified by their own Ed25519 public key. */
export interface Approver {
  /** The approver's name, which is also the name inside their key (e.g. alice@acme.example). */
  readonly id: string;
  /** Their verifier key, `<name>+<hash>+<base64>`, as `witness approver init` prints it. */
  readonly key: string;
  /** `<name>+<hash>`, the short form a person compares by eye. */
  readonly fingerprint: string;
  /** 1-based line in the policy file. */
  readonly line: number;
}

/** A loaded, validated policy. Plain data: evaluation reads it and never changes it. */
export interface Policy {
  /** The format version (`version:` in the file). */
  readonly version: 1;
  readonly default: Effect;
  readonly mode: Mode;
  readonly rules: readonly PolicyRule[];
  /** Who may release calls held for review. Part of the file, so the policy version covers it. */
  readonly approvers: readonly Approver[];
  /** 1-based line of `default:`, for messages. */
  readonly defaultLine: number;
  /** SHA-256 (hex) of the file's bytes: the policy version recorded with every decision. */
  readonly sha256: string;
  /** Where it came from (the path given to loadPolicyFile), for messages. */
  readonly source: string;
}

/** The call being decided. `server` may be omitted (a gateway with one unnamed upstream): it is then `""`. */
export interface CallContext {
  readonly agent: string;
  readonly server?: string | undefined;
  readonly tool: string;
  readonly args?: unknown;
}

export interface Evaluation {
  /** What the policy says. In shadow mode this is what *would* happen; nothing is enforced. */
  readonly decision: Effect;
  /** The id of the deciding rule (the first matching rule with the winning effect); absent when the default applied. */
  readonly rule?: string;
  /** The deciding rule's `reason`, written for the agent and the auditor. */
  readonly reason?: string;
  readonly mode: Mode;
  /** True in enforce mode; false in shadow mode. */
  readonly enforced: boolean;
  /** Shadow mode only: the decision that enforce mode would have taken (equal to `decision`). */
  readonly wouldBe?: Effect;
  /** Ids of every rule that matched, in file order (including those outranked). */
  readonly matched: readonly string[];
  /** SHA-256 (hex) of the policy file's bytes. */
  readonly policyVersion: string;
  /** A review only, when the policy lists approvers: who may release the call (the deciding rule's approvers, else every approver listed). */
  readonly approvers?: readonly Approver[];
}
