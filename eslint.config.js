// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The recommended rules plus the two that catch promises nobody awaits or handles: an unhandled
 * rejection in a recorder or gateway is an event silently lost, or a process that dies.
 */
export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'coverage/**', '.scratch/**', '.witness/**', 'witness-demo/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Control characters in patterns are the point where input is screened (JSON-RPC frames,
      // terminal output, policy text).
      'no-control-regex': 'off',
      // TypeScript already reports undefined names, with the types in view.
      'no-undef': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true, caughtErrors: 'none' }],
    },
  },
  // A test keeps `let id = ''` before a try so its finally can report what it had reached.
  { files: ['test/**'], rules: { 'no-useless-assignment': 'off' } },
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
);
