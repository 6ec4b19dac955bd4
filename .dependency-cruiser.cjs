/**
 * The import table of docs/ARCHITECTURE.md, enforced (errors, not warnings) by `npm test`.
 * Each folder under src/ may import only the folders listed for it, and only through their
 * index.ts; no cycles anywhere.
 */
const ALLOWED = {
  core: [],
  store: ['core'],
  recorder: ['core', 'store'],
  integrations: ['recorder'],
  approvals: ['core', 'store', 'recorder'],
  policy: ['core'],
  gateway: ['recorder', 'policy', 'capture', 'approvals', 'core', 'store'],
  capture: ['core', 'store'],
  server: ['core', 'store', 'recorder', 'integrations', 'approvals', 'policy', 'gateway', 'capture', 'export'],
  export: ['core', 'store', 'capture'],
  report: ['core', 'store', 'capture', 'export', 'server'],
  monitor: ['core', 'store', 'recorder', 'approvals'],
  anchor: ['core', 'store'],
  cli: ['core', 'store', 'recorder', 'integrations', 'approvals', 'policy', 'gateway', 'capture', 'server', 'export', 'report', 'demo', 'monitor', 'anchor'],
  demo: ['core', 'store', 'recorder', 'integrations', 'approvals', 'policy', 'gateway', 'capture', 'server', 'export', 'report'],
};
const MODULES = Object.keys(ALLOWED);

const forbidden = [
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'Cycles make modules impossible to reason about and to load lazily.',
    from: {},
    to: { circular: true },
  },
  {
    name: 'only-through-index',
    severity: 'error',
    comment: "A module's index.ts is its only public surface: import src/<other>/index.js, never its inner files.",
    from: { path: '^src/([^/]+)/' },
    to: { path: '^src/([^/]+)/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
  },
  ...MODULES.map((m) => ({
    name: `${m}-imports`,
    severity: 'error',
    comment: `docs/ARCHITECTURE.md: src/${m} may import ${ALLOWED[m].length === 0 ? 'nothing in src' : ALLOWED[m].join(', ')}.`,
    from: { path: `^src/${m}/` },
    to: {
      path: '^src/',
      pathNot: [`^src/${m}/`, ...ALLOWED[m].map((a) => `^src/${a}/index\\.ts$`)],
    },
  })),
];

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.build.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js'] },
  },
};
