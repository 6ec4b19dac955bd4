/**
 * src/policy: the policy file format (YAML), its validation and its evaluation. Pure, apart from
 * loadPolicyFile reading the file. The format is documented in the README ("Policy files").
 */
export { EFFECTS, MODES, type Approver, type CallContext, type Effect, type Evaluation, type Mode, type Policy, type PolicyRule } from './types.js';
export { MAX_POLICY_BYTES, parsePolicy, type ParseOptions, type PolicyProblem } from './parse.js';
export { loadPolicyFile } from './load.js';
export { evaluate, visibleTools } from './evaluate.js';
export { approversFor, requireApprovers } from './approvers.js';
export { evaluateCondition, parseCondition, ConditionSyntaxError, type Condition } from './conditions.js';
export { matchGlob } from './glob.js';
export { Backtest, BacktestExample, BacktestReport, classifyCall, type BacktestOptions, type Classification, type FromDecision, type RecordedCall, type RecordedDecision } from './backtest.js';
export { callOf, callOfTexts, decisionOf, decisionOfTexts, parseStored, type DecisionHeader, type RecordedCallFields, type StoredTexts } from './recorded.js';
