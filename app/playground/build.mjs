// Bundles src/main.jsx (React, @ai-sdk/react, ai: the versions package-lock.json pins) into static/app.js.
// `make playground` runs it; tests/e2e/test_playground.py checks that the committed bundle is what it builds.
//
//   node build.mjs [outfile]      (default: static/app.js)
import { build } from 'esbuild';

const outfile = process.argv[2] ?? 'static/app.js';

await build({
  entryPoints: ['src/main.jsx'],
  outfile,
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: new URL('.', import.meta.url).pathname,
});
