import type { BundleScope } from '../export/index.js';

/**
 * The control-mapping matrix of the auditor report, as data: each requirement of a regime, in our
 * own words (a paraphrase, never the legal text; `citation` names the provision to read), and the
 * evidence a bundle of the same scope holds for it. The report states, per row, only one of three
 * things the logs can support:
 *
 * - `evidence present`: the bundle holds records of the kind the requirement asks for;
 * - `gap`: it holds none (nothing of that kind was recorded in scope: either nothing happened or it
 *   was not recorded, and logs alone cannot tell which);
 * - `not assessable from logs`: the requirement is about something a log cannot show (a procedure,
 *   a contract, a storage medium, a person's competence).
 *
 * Never "compliant": whether a control operates effectively is the auditor's judgement, made from
 * this evidence and much else.
 */

export type Regime = BundleScope['regimes'][number];

export const REGIME_TITLES: Record<Regime, string> = {
  'eu-ai-act': 'EU AI Act (Regulation (EU) 2024/1689)',
  soc2: 'SOC 2 (AICPA Trust Services Criteria, 2017, points of focus revised 2022)',
  hipaa: 'HIPAA Security Rule (45 CFR Part 164, Subpart C)',
  sec: 'SEC Rule 17a-4 and FINRA Rules 3110 and 4511',
};

/** The population names of src/export/populations.ts a row can rest on. */
export type PopulationName = 'approvals' | 'denials' | 'overrides-and-halts' | 'configuration-changes' | 'reviews' | 'audit-access' | 'errors-and-gaps';

/**
 * How a row's status is decided from what the report found:
 * - `populations`: evidence present when any named population has an event in scope, else a gap;
 * - `log`: evidence present when the scope holds events and the checkpoint they are proved against
 *   is signed by the ledger's key, else a gap;
 * - `retention`: evidence present when a retention purge, hold or retention configuration change is
 *   recorded in scope; otherwise not assessable from logs (retention is configured outside them);
 * - `none`: never assessable from logs; `why` says what would be needed instead.
 */
export type Assessment = { populations: PopulationName[] } | { log: true } | { retention: true } | { none: string };

export interface ControlRow {
  regime: Regime;
  /** The provision, short: `Art. 12(1)`, `CC6.1`, `164.312(b)`. */
  id: string;
  /** The provision's full citation. */
  citation: string;
  /** What it asks, paraphrased. */
  requirement: string;
  /** Where in the bundle the evidence is (files and report sections). */
  evidence: string;
  assess: Assessment;
}

export const CONTROLS: readonly ControlRow[] = [
  // ------------------------------------------------------------------ EU AI Act
  {
    regime: 'eu-ai-act',
    id: 'Art. 12(1)',
    citation: 'Regulation (EU) 2024/1689, Article 12(1) (record-keeping)',
    requirement: 'A high-risk AI system must technically allow the automatic recording of events (logs) over its lifetime.',
    evidence: 'events.jsonl (every event of the span), proofs.jsonl and checkpoint.txt; report section "Integrity statement".',
    assess: { log: true },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 12(2)',
    citation: 'Regulation (EU) 2024/1689, Article 12(2)(a)-(c)',
    requirement:
      'The logs must let one identify situations that may present a risk or lead to a substantial modification, support post-market monitoring, and support the monitoring of operation by deployers.',
    evidence: 'populations/errors-and-gaps.jsonl, populations/configuration-changes.jsonl, populations/denials.jsonl; sections "Change timeline" and "Incidents, alerts and recording gaps".',
    assess: { populations: ['errors-and-gaps', 'configuration-changes', 'denials'] },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 12(3)',
    citation: 'Regulation (EU) 2024/1689, Article 12(3)',
    requirement: 'For remote biometric identification systems only: record each period of use, the reference database, the input data that led to a match and the people who verified the result.',
    evidence: 'None specific: Witness records tool calls and their inputs, not a biometric system’s reference database.',
    assess: { none: 'applies only to remote biometric identification systems (Annex III, point 1(a)); whether it applies is a fact about the system, not the log.' },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 14(1), 14(4)(a)-(c)',
    citation: 'Regulation (EU) 2024/1689, Article 14(1) and 14(4)(a)-(c) (human oversight)',
    requirement: 'The system must be designed so that natural persons can effectively oversee it while in use, understand its output and decide on it.',
    evidence: 'populations/approvals.jsonl (calls held for a person and their decisions); section "Human oversight".',
    assess: { populations: ['approvals'] },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 14(4)(d)-(e)',
    citation: 'Regulation (EU) 2024/1689, Article 14(4)(d) and (e)',
    requirement: 'The people overseeing it must be able to disregard, override or reverse its output, and to interrupt it (a "stop" procedure).',
    evidence: 'populations/overrides-and-halts.jsonl (human.override and human.halt events); section "Human oversight".',
    assess: { populations: ['overrides-and-halts'] },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 19(1)',
    citation: 'Regulation (EU) 2024/1689, Article 19(1) (automatically generated logs, providers)',
    requirement: 'Providers must keep the automatically generated logs under their control for a period suited to the system’s purpose, of at least six months.',
    evidence: 'Section "Retention and holds" (purges and legal holds recorded in scope); the span’s first and last event times on the cover.',
    assess: { retention: true },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 26(1)-(2)',
    citation: 'Regulation (EU) 2024/1689, Article 26(1) and (2) (obligations of deployers)',
    requirement: 'Deployers must use the system according to its instructions and assign human oversight to people with the competence, training and authority it needs.',
    evidence: 'populations/approvals.jsonl names who decided each held call; competence and instructions are outside the log.',
    assess: { none: 'who approved is in the approvals population, but their competence, training and authority, and the instructions for use, are documents, not log records.' },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 26(5)',
    citation: 'Regulation (EU) 2024/1689, Article 26(5)',
    requirement: 'Deployers must monitor the operation of the system and report serious incidents and risks to the provider and authorities.',
    evidence: 'populations/errors-and-gaps.jsonl (errors, alerts, recording gaps); section "Incidents, alerts and recording gaps".',
    assess: { populations: ['errors-and-gaps'] },
  },
  {
    regime: 'eu-ai-act',
    id: 'Art. 26(6)',
    citation: 'Regulation (EU) 2024/1689, Article 26(6)',
    requirement: 'Deployers must keep the logs under their control for a period suited to the purpose, of at least six months.',
    evidence: 'Section "Retention and holds".',
    assess: { retention: true },
  },
  // ------------------------------------------------------------------ SOC 2
  {
    regime: 'soc2',
    id: 'CC6.1',
    citation: 'AICPA TSP section 100, Common Criteria CC6.1 (logical access)',
    requirement: 'The entity implements logical access security over protected information assets, including identifying and authenticating users and restricting access.',
    evidence:
      'populations/audit-access.jsonl (who read or exported audit data), populations/denials.jsonl (actions refused); agent identity and credential in every event header; section "Access to logs".',
    assess: { populations: ['audit-access', 'denials'] },
  },
  {
    regime: 'soc2',
    id: 'CC7.2',
    citation: 'AICPA TSP section 100, Common Criteria CC7.2 (system monitoring)',
    requirement: 'The entity monitors system components for anomalies indicating malicious acts, natural disasters or errors, and analyses them to tell whether they are security events.',
    evidence: 'populations/errors-and-gaps.jsonl; sections "Incidents, alerts and recording gaps" and "Exceptions".',
    assess: { populations: ['errors-and-gaps'] },
  },
  {
    regime: 'soc2',
    id: 'CC7.3',
    citation: 'AICPA TSP section 100, Common Criteria CC7.3 (evaluation of security events)',
    requirement: 'The entity evaluates security events to determine whether they could or did cause a failure to meet its objectives, and acts on them.',
    evidence: 'populations/reviews.jsonl (people’s reviews, bound to a population digest); section "Reviews performed and due".',
    assess: { populations: ['reviews'] },
  },
  {
    regime: 'soc2',
    id: 'CC8.1',
    citation: 'AICPA TSP section 100, Common Criteria CC8.1 (change management)',
    requirement: 'The entity authorises, designs, develops or acquires, configures, documents, tests, approves and implements changes to infrastructure, data, software and procedures.',
    evidence: 'populations/configuration-changes.jsonl (model, prompt, policy, tool-scope, retention and key changes, with who approved them); system.json; section "Change timeline".',
    assess: { populations: ['configuration-changes'] },
  },
  // ------------------------------------------------------------------ HIPAA
  {
    regime: 'hipaa',
    id: '164.312(b)',
    citation: '45 CFR 164.312(b) (audit controls, required)',
    requirement: 'Implement hardware, software or procedural mechanisms that record and examine activity in information systems that contain or use electronic protected health information.',
    evidence: 'events.jsonl with proofs.jsonl and checkpoint.txt (recording); populations/reviews.jsonl (examination); section "Integrity statement".',
    assess: { log: true },
  },
  {
    regime: 'hipaa',
    id: '164.312(c)(1)',
    citation: '45 CFR 164.312(c)(1) (integrity, standard)',
    requirement: 'Implement policies and procedures to protect electronic protected health information from improper alteration or destruction.',
    evidence:
      'The hash chain, inclusion proofs and signed checkpoint make alteration or deletion of the log itself detectable (section "Integrity statement"); the integrity of the health records in other systems is not shown by this log.',
    assess: { log: true },
  },
  {
    regime: 'hipaa',
    id: '164.308(a)(1)(ii)(D)',
    citation: '45 CFR 164.308(a)(1)(ii)(D) (information system activity review, required)',
    requirement: 'Regularly review records of information system activity, such as audit logs, access reports and security incident tracking reports.',
    evidence: 'populations/reviews.jsonl; section "Reviews performed and due"; populations/audit-access.jsonl (access reports).',
    assess: { populations: ['reviews'] },
  },
  // ------------------------------------------------------------------ SEC / FINRA
  {
    regime: 'sec',
    id: '17a-4(f)',
    citation: '17 CFR 240.17a-4(f)(2) (electronic recordkeeping systems, as amended in 2022)',
    requirement:
      'Electronic records must be kept either in a non-rewriteable, non-erasable format or in a system with a complete time-stamped audit trail that allows an original record to be re-created if it is modified or deleted.',
    evidence:
      'The append-only ledger with its hash chain and signed Merkle checkpoints (section "Integrity statement"): any modification or deletion of a record in the span fails verification. Whether the storage medium itself meets the rule is not shown by the log.',
    assess: { log: true },
  },
  {
    regime: 'sec',
    id: '17a-4(b)(4)',
    citation: '17 CFR 240.17a-4(b)(4)',
    requirement: 'Preserve for at least three years originals of communications relating to the business as such, the first two years in an easily accessible place.',
    evidence: 'Section "Retention and holds"; the span’s first and last event times on the cover.',
    assess: { retention: true },
  },
  {
    regime: 'sec',
    id: 'FINRA 3110',
    citation: 'FINRA Rule 3110(a), (b) and (c) (supervision)',
    requirement: 'Maintain a supervisory system, with written procedures for reviewing transactions and correspondence, and evidence that the reviews were made.',
    evidence: 'populations/approvals.jsonl (pre-approval of held actions), populations/reviews.jsonl (post-review); sections "Human oversight" and "Reviews performed and due".',
    assess: { populations: ['approvals', 'reviews'] },
  },
  {
    regime: 'sec',
    id: 'FINRA 3110(b) procedures',
    citation: 'FINRA Rule 3110(b)(1)',
    requirement: 'Establish, maintain and enforce written supervisory procedures.',
    evidence: 'None: written procedures are documents; the policy versions in force are listed in system.json.',
    assess: { none: 'written supervisory procedures, and whether they are enforced as written, are documents and practices outside the log.' },
  },
  {
    regime: 'sec',
    id: 'FINRA 4511',
    citation: 'FINRA Rule 4511(a)-(c) (books and records)',
    requirement: 'Make and preserve books and records as FINRA rules and the Exchange Act require, in a format that complies with SEA Rule 17a-4, for six years where no other period is set.',
    evidence: 'events.jsonl and the bundle as a whole; section "Retention and holds".',
    assess: { retention: true },
  },
];

/** The rows of the chosen regimes, in the order the regimes were asked for. */
export function controlsFor(regimes: readonly Regime[]): ControlRow[] {
  return regimes.flatMap((r) => CONTROLS.filter((c) => c.regime === r));
}
