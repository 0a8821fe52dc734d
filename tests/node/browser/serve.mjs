// A tiny static server for the browser test: `node browser/serve.mjs PORT [PORT...]` serves the page on
// every port given (each port is an origin of its own): `/` is page.html, `/page.js` is page.js bundled for
// the browser by esbuild (the real `ai` package from node_modules, nothing fetched), `/healthz` answers
// `ok` once every port listens. Stops on SIGTERM or SIGINT.

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = fileURLToPath(new URL('.', import.meta.url));
const ports = process.argv.slice(2).map(Number);
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
  console.error('usage: node browser/serve.mjs PORT [PORT...]');
  process.exit(2);
}

const built = await esbuild.build({
  entryPoints: [`${here}page.js`],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  logLevel: 'warning',
});
const files = {
  '/': { type: 'text/html; charset=utf-8', body: await readFile(`${here}page.html`) },
  '/page.js': { type: 'text/javascript; charset=utf-8', body: built.outputFiles[0].contents },
  '/healthz': { type: 'text/plain', body: 'ok' },
};

function handle(req, res) {
  const file = files[new URL(req.url, 'http://x').pathname];
  if (req.method !== 'GET' || file === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
}

// The first port last: `/healthz` on it answers only once every other port listens.
for (const port of [...ports.slice(1), ports[0]]) {
  const server = http.createServer(handle);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}
console.log(`serving ${built.outputFiles[0].contents.length} bytes of bundle on ${ports.join(', ')}`);

// Nothing to flush: open keep-alive connections from the browser need not be waited for.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
