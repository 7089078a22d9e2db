'use strict';
// Tests of the node template: start the real server (node index.js from a temp bundle built
// from templates/node), talk HTTP/1.1 to it over its Unix socket.
// Run: node --test tests/templates/

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const ROOT = path.resolve(__dirname, '..', '..');
const TEMPLATE = path.join(ROOT, 'templates', 'node');

const HANDLER = `
'use strict';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function describeBody(body) {
  if (Buffer.isBuffer(body)) return { type: 'buffer', data: body.toString('base64') };
  if (typeof body === 'string') return { type: 'string', data: body };
  return { type: typeof body, data: body };
}

module.exports = (event, context, cb) => {
  switch (event.path) {
    case '/status-headers': {
      const chained = context.status(201).headers({ 'X-Test': 'yes' });
      if (chained !== context) throw new Error('status()/headers() must return the context');
      return context.succeed({ ok: true, status: context.status() });
    }
    case '/succeed-string':
      context.succeed('plain text');
      return undefined;
    case '/fail':
      return context.fail(new Error('failed on purpose'));
    case '/fail-status':
      return context.status(422).fail('bad input');
    case '/throw-sync':
      throw new Error('secret-sync-xyz');
    case '/reject':
      return (async () => { await sleep(5); throw new Error('secret-async-xyz'); })();
    case '/string':
      return Promise.resolve('h\\u00e9llo');
    case '/buffer':
      return Promise.resolve(Buffer.from([0, 1, 2]));
    case '/array':
      return Promise.resolve([1, 2, 3]);
    case '/undefined':
      return Promise.resolve(undefined);
    case '/typed':
      context.headers({ 'Content-Type': 'text/csv' });
      return Promise.resolve('a,b\\n');
    case '/cb':
      cb(null, { via: 'cb' });
      return undefined;
    case '/cb-error':
      cb(new Error('cb error'));
      return undefined;
    case '/bad-status':
      return context.status('nope').succeed('x');
    case '/sleep':
      return sleep(300).then(() => ({ slept: true }));
    case '/dep':
      return Promise.resolve({ value: require('ironfaas-fake-dep').value });
    default:
      return Promise.resolve({
        method: event.method,
        path: event.path,
        query: event.query,
        headers: event.headers,
        body: describeBody(event.body),
      });
  }
};
`;

function makeBundle(handlerSource) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ironfaas-node-test-'));
  const bundle = path.join(tmp, 'bundle');
  fs.cpSync(TEMPLATE, bundle, {
    recursive: true,
    filter: (src) => !['template.yml', 'node_modules'].includes(path.basename(src)),
  });
  fs.writeFileSync(path.join(bundle, 'function', 'handler.js'), handlerSource);
  return { tmp, bundle };
}

// Start the server of a bundle; resolves once GET /_/health answers 200.
async function startServer(handlerSource, env = {}, prepare = () => {}) {
  const { tmp, bundle } = makeBundle(handlerSource);
  prepare(bundle);
  const sockPath = path.join(tmp, 'fn.sock');
  const proc = spawn(process.execPath, ['index.js'], {
    cwd: bundle,
    env: { ...process.env, IRONFAAS_SOCKET: sockPath, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const server = {
    tmp, bundle, sockPath, proc, exited,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const r = await call(sockPath, { path: '/_/health' });
      if (r.status === 200) return server;
    } catch (e) {
      // not listening yet
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      await server.stop();
      throw new Error(`server did not become healthy; stderr:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

// One request on a fresh connection.
function call(sockPath, { method = 'GET', path: p = '/', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sockPath, method, path: p, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function json(r) {
  return JSON.parse(r.body.toString('utf8'));
}

// A raw HTTP/1.1 client on one connection, so keep-alive and interim responses are observable.
class RawClient {
  constructor(sockPath) {
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.waiters = [];
    this.sock = net.createConnection(sockPath);
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    this.sock.on('close', () => { this.ended = true; this.wake(); });
    this.sock.on('error', () => {});
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  async waitFor(pred) {
    while (!pred()) {
      if (this.ended) throw new Error('connection closed by the server');
      await new Promise((r) => this.waiters.push(r));
    }
  }

  send(data) {
    this.sock.write(data);
  }

  async readHead() {
    await this.waitFor(() => this.buf.indexOf('\r\n\r\n') >= 0);
    const end = this.buf.indexOf('\r\n\r\n');
    const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    this.buf = this.buf.subarray(end + 4);
    const [version, status] = lines[0].split(' ');
    assert.equal(version, 'HTTP/1.1');
    const headers = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return { status: Number(status), headers };
  }

  async readResponse({ head = false } = {}) {
    const { status, headers } = await this.readHead();
    assert.equal(headers['transfer-encoding'], undefined, 'responses must carry Content-Length');
    assert.ok(headers['content-length'] !== undefined, `no Content-Length in ${JSON.stringify(headers)}`);
    if (head) return { status, headers, body: Buffer.alloc(0) };
    const len = Number(headers['content-length']);
    await this.waitFor(() => this.buf.length >= len);
    const body = this.buf.subarray(0, len);
    this.buf = this.buf.subarray(len);
    return { status, headers, body };
  }

  async closedByServer(ms = 2000) {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.ended && this.buf.length === 0;
  }

  close() {
    this.sock.destroy();
  }
}

describe('node template', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await startServer(HANDLER, { MAX_JSON_SIZE: '1kb', MAX_RAW_SIZE: '2kb' }); });
  after(async () => { if (server) await server.stop(); });

  it('answers GET /_/health itself', async () => {
    const r = await call(server.sockPath, { path: '/_/health' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'OK');
  });

  it('passes method, path, query and headers', async () => {
    const r = await call(server.sockPath, {
      method: 'PATCH',
      path: '/sub/path?a=1&b=x%20y&a=2&c=',
      headers: { 'X-Custom-Header': 'Value-1' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    const d = json(r);
    assert.equal(d.method, 'PATCH');
    assert.equal(d.path, '/sub/path');
    assert.deepEqual(d.query, { a: ['1', '2'], b: 'x y', c: '' });
    assert.equal(d.headers['x-custom-header'], 'Value-1');
    assert.equal(d.headers['X-Custom-Header'], undefined);
  });

  it('passes every method to the handler', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const r = await call(server.sockPath, { method, path: '/m' });
      assert.equal(json(r).method, method);
    }
  });

  it('treats a body without Content-Type as text/plain', async () => {
    const r = await call(server.sockPath, { method: 'POST', path: '/', body: 'plain words' });
    assert.deepEqual(json(r).body, { type: 'string', data: 'plain words' });
  });

  it('gives {} for a request without a body, as upstream body-parser does', async () => {
    assert.deepEqual(json(await call(server.sockPath, { path: '/' })).body, { type: 'object', data: {} });
  });

  it('parses text/* as a string, honouring the charset', async () => {
    let r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'text/csv' }, body: 'a,b',
    });
    assert.deepEqual(json(r).body, { type: 'string', data: 'a,b' });
    r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'text/plain; charset=iso-8859-1' },
      body: Buffer.from([0x63, 0x61, 0x66, 0xe9]),
    });
    assert.deepEqual(json(r).body, { type: 'string', data: 'caf\u00e9' });
  });

  it('parses application/json and +json into objects', async () => {
    let r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: '{"a":[1,2],"b":"c"}',
    });
    assert.deepEqual(json(r).body, { type: 'object', data: { a: [1, 2], b: 'c' } });
    r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/vnd.api+json; charset=utf-8' }, body: '[1]',
    });
    assert.deepEqual(json(r).body, { type: 'object', data: [1] });
  });

  it('decompresses a gzip body before parsing', async () => {
    const r = await call(server.sockPath, {
      method: 'POST', path: '/',
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: zlib.gzipSync('{"zipped":true}'),
    });
    assert.deepEqual(json(r).body, { type: 'object', data: { zipped: true } });
  });

  it('answers 400 with a clear message for invalid JSON', async () => {
    let r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: '{"a":',
    });
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /invalid JSON body/);
    r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: '"just a string"',
    });
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /expected an object or an array/);
  });

  it('parses urlencoded forms into objects, repeated keys as arrays', async () => {
    const r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=J%C3%BCrgen+X&tag=a&tag=b',
    });
    assert.deepEqual(json(r).body, { type: 'object', data: { name: 'J\u00fcrgen X', tag: ['a', 'b'] } });
  });

  it('gives a Buffer for other content types', async () => {
    const bytes = Buffer.from([0, 255, 1, 254]);
    const r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes,
    });
    assert.deepEqual(json(r).body, { type: 'buffer', data: bytes.toString('base64') });
  });

  it('answers 413 beyond MAX_JSON_SIZE and MAX_RAW_SIZE, each for its own types', async () => {
    const jsonOf = (n) => JSON.stringify({ s: 'x'.repeat(n - 8) });
    let r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: jsonOf(1000),
    });
    assert.equal(r.status, 200, 'a 1000-byte JSON body fits in MAX_JSON_SIZE=1kb');
    r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: jsonOf(1500),
    });
    assert.equal(r.status, 413);
    r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1500),
    });
    assert.equal(r.status, 200, 'a 1500-byte raw body fits in MAX_RAW_SIZE=2kb');
    r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'text/plain' }, body: 'y'.repeat(2100),
    });
    assert.equal(r.status, 413);
  });

  it('answers 413 for an oversize chunked body (no Content-Length to check up front)', async () => {
    const c = new RawClient(server.sockPath);
    try {
      const chunk = 'z'.repeat(1000);
      c.send('POST / HTTP/1.1\r\nHost: fn\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n' +
        `3e8\r\n${chunk}\r\n3e8\r\n${chunk}\r\n3e8\r\n${chunk}\r\n0\r\n\r\n`);
      const r = await c.readResponse();
      assert.equal(r.status, 413);
    } finally {
      c.close();
    }
  });

  it('supports context.status().headers().succeed() chaining', async () => {
    const r = await call(server.sockPath, { path: '/status-headers' });
    assert.equal(r.status, 201);
    assert.equal(r.headers['x-test'], 'yes');
    assert.deepEqual(json(r), { ok: true, status: 201 });
  });

  it('sends strings as text/html, Buffers raw, arrays as JSON, undefined as empty', async () => {
    let r = await call(server.sockPath, { path: '/string' });
    assert.equal(r.body.toString('utf8'), 'h\u00e9llo');
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    r = await call(server.sockPath, { path: '/buffer' });
    assert.deepEqual([...r.body], [0, 1, 2]);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    r = await call(server.sockPath, { path: '/array' });
    assert.deepEqual(json(r), [1, 2, 3]);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    r = await call(server.sockPath, { path: '/undefined' });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['content-length'], '0');
    r = await call(server.sockPath, { path: '/succeed-string' });
    assert.equal(r.body.toString(), 'plain text');
    r = await call(server.sockPath, { path: '/typed' });
    assert.equal(r.headers['content-type'], 'text/csv');
  });

  it('supports the node-style callback', async () => {
    let r = await call(server.sockPath, { path: '/cb' });
    assert.deepEqual([r.status, json(r)], [200, { via: 'cb' }]);
    r = await call(server.sockPath, { path: '/cb-error' });
    assert.equal(r.status, 500);
  });

  it('context.fail answers 500 with the error text, or the status already set', async () => {
    let r = await call(server.sockPath, { path: '/fail' });
    assert.equal(r.status, 500);
    assert.equal(r.body.toString(), 'Error: failed on purpose');
    r = await call(server.sockPath, { path: '/fail-status' });
    assert.equal(r.status, 422);
    assert.equal(r.body.toString(), 'bad input');
  });

  it('a thrown error or rejection is a 500 without details; the stack goes to stderr', async () => {
    for (const [p, secret] of [['/throw-sync', 'secret-sync-xyz'], ['/reject', 'secret-async-xyz']]) {
      const r = await call(server.sockPath, { path: p });
      assert.equal(r.status, 500, p);
      assert.equal(r.body.toString(), 'Internal Server Error');
      const deadline = Date.now() + 5000;
      while (!server.stderr().includes(secret) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 10));
      }
      assert.match(server.stderr(), new RegExp(`Error: ${secret}\\n\\s+at `));
    }
  });

  it('an invalid status code is a 500', async () => {
    const r = await call(server.sockPath, { path: '/bad-status' });
    assert.equal(r.status, 500);
  });

  it('keeps the connection alive across requests', async () => {
    const c = new RawClient(server.sockPath);
    try {
      c.send('GET /one HTTP/1.1\r\nHost: fn\r\n\r\n');
      assert.equal(json(await c.readResponse()).path, '/one');
      c.send('GET /two HTTP/1.1\r\nHost: fn\r\n\r\n');
      assert.equal(json(await c.readResponse()).path, '/two');
      assert.equal(c.ended, false);
    } finally {
      c.close();
    }
  });

  it('honours Connection: close', async () => {
    const c = new RawClient(server.sockPath);
    try {
      c.send('GET /bye HTTP/1.1\r\nHost: fn\r\nConnection: close\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200);
      assert.equal(await c.closedByServer(), true);
    } finally {
      c.close();
    }
  });

  it('reads a chunked request body', async () => {
    const c = new RawClient(server.sockPath);
    try {
      c.send('POST /chunked HTTP/1.1\r\nHost: fn\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n');
      const r = await c.readResponse();
      assert.deepEqual(json(r).body, { type: 'string', data: 'hello, world' });
    } finally {
      c.close();
    }
  });

  it('sends 100 Continue before reading the body when asked to', async () => {
    const c = new RawClient(server.sockPath);
    try {
      c.send('POST /expect HTTP/1.1\r\nHost: fn\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n' +
        'Expect: 100-continue\r\n\r\n');
      const interim = await c.readHead();
      assert.equal(interim.status, 100);
      c.send('data');
      const r = await c.readResponse();
      assert.deepEqual(json(r).body, { type: 'string', data: 'data' });
    } finally {
      c.close();
    }
  });

  it('HEAD gets the Content-Length but no body', async () => {
    const c = new RawClient(server.sockPath);
    try {
      c.send('HEAD /string HTTP/1.1\r\nHost: fn\r\n\r\n');
      const r = await c.readResponse({ head: true });
      assert.equal(r.headers['content-length'], String(Buffer.byteLength('h\u00e9llo')));
      c.send('GET /string HTTP/1.1\r\nHost: fn\r\n\r\n');
      assert.equal((await c.readResponse()).body.toString(), 'h\u00e9llo');
    } finally {
      c.close();
    }
  });

  it('serves 20 requests in parallel', async () => {
    const start = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => call(server.sockPath, { path: '/sleep' })));
    const elapsed = Date.now() - start;
    assert.deepEqual(results.map((r) => [r.status, json(r)]), Array(20).fill([200, { slept: true }]));
    // Each call waits 300 ms: one at a time they would take 6 s.
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  });
});

describe('node template with RAW_BODY=true', { timeout: 30000 }, () => {
  let server;
  before(async () => { server = await startServer(HANDLER, { RAW_BODY: 'true' }); });
  after(async () => { if (server) await server.stop(); });

  it('gives a Buffer even for JSON', async () => {
    const r = await call(server.sockPath, {
      method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}',
    });
    assert.deepEqual(json(r).body, { type: 'buffer', data: Buffer.from('{"a":1}').toString('base64') });
  });
});

describe('node template dependencies', { timeout: 60000 }, () => {
  let server;
  before(async () => {
    server = await startServer(HANDLER, {}, (bundle) => {
      // A local npm package as a tarball, installed by the template's own build step.
      const pkg = path.join(bundle, '..', 'pkg', 'package');
      fs.mkdirSync(pkg, { recursive: true });
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'ironfaas-fake-dep', version: '1.0.0' }));
      fs.writeFileSync(path.join(pkg, 'index.js'), 'module.exports = { value: 42 };\n');
      const tarball = path.join(bundle, 'function', 'ironfaas-fake-dep-1.0.0.tgz');
      execFileSync('tar', ['czf', tarball, '-C', path.dirname(pkg), 'package']);
      fs.writeFileSync(path.join(bundle, 'function', 'package.json'), JSON.stringify({
        name: 'function', version: '1.0.0', private: true,
        dependencies: { 'ironfaas-fake-dep': 'file:ironfaas-fake-dep-1.0.0.tgz' },
      }));
      const yml = fs.readFileSync(path.join(TEMPLATE, 'template.yml'), 'utf8');
      const m = /- if_exists: function\/package\.json\n\s+run: \[([^\]]*)\]/.exec(yml);
      assert.ok(m, 'template.yml has the npm build step');
      const [cmd, ...args] = m[1].split(',').map((s) => s.trim());
      execFileSync(cmd, args, { cwd: bundle, stdio: 'ignore' });
      assert.ok(fs.existsSync(path.join(bundle, 'function', 'node_modules', 'ironfaas-fake-dep', 'index.js')));
    });
  });
  after(async () => { if (server) await server.stop(); });

  it('require() in the handler finds packages installed by the build step', async () => {
    const r = await call(server.sockPath, { path: '/dep' });
    assert.equal(r.status, 200, server.stderr());
    assert.deepEqual(json(r), { value: 42 });
  });
});

describe('node template stop', { timeout: 30000 }, () => {
  it('on SIGTERM finishes the call in flight, then exits 0', async () => {
    const server = await startServer(HANDLER);
    const c = new RawClient(server.sockPath);
    try {
      c.send('GET /sleep HTTP/1.1\r\nHost: fn\r\n\r\n');
      await new Promise((r) => setTimeout(r, 100));
      server.proc.kill('SIGTERM');
      const r = await c.readResponse();
      assert.deepEqual([r.status, json(r)], [200, { slept: true }]);
      assert.equal(r.headers.connection, 'close');
      assert.equal(await server.exited, 0);
      assert.equal(fs.existsSync(server.sockPath), false);
    } finally {
      c.close();
      await server.stop();
    }
  });
});

describe('node template start-up', { timeout: 30000 }, () => {
  it('exits non-zero with the error on stderr when the handler cannot be loaded', async () => {
    const { tmp, bundle } = makeBundle('throw new Error("boom at require");\n');
    try {
      const sockPath = path.join(tmp, 'fn.sock');
      const proc = spawn(process.execPath, ['index.js'], {
        cwd: bundle, env: { ...process.env, IRONFAAS_SOCKET: sockPath }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      proc.stderr.on('data', (d) => { stderr += d; });
      const code = await new Promise((resolve) => proc.on('exit', resolve));
      assert.notEqual(code, 0);
      assert.match(stderr, /Error: boom at require/);
      assert.equal(fs.existsSync(sockPath), false);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('rejects a malformed size limit at start', async () => {
    const { tmp, bundle } = makeBundle('module.exports = async () => "x";\n');
    try {
      const proc = spawn(process.execPath, ['index.js'], {
        cwd: bundle,
        env: { ...process.env, IRONFAAS_SOCKET: path.join(tmp, 'fn.sock'), MAX_JSON_SIZE: 'lots' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      proc.stderr.on('data', (d) => { stderr += d; });
      const code = await new Promise((resolve) => proc.on('exit', resolve));
      assert.notEqual(code, 0);
      assert.match(stderr, /MAX_JSON_SIZE/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('listens on HOST:PORT when IRONFAAS_SOCKET is not set', async () => {
    const port = await new Promise((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const p = probe.address().port;
        probe.close(() => resolve(p));
      });
    });
    const { tmp, bundle } = makeBundle('module.exports = async (event) => ({ path: event.path });\n');
    const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port) };
    delete env.IRONFAAS_SOCKET;
    const proc = spawn(process.execPath, ['index.js'], { cwd: bundle, env, stdio: 'ignore' });
    try {
      const deadline = Date.now() + 10000;
      for (;;) {
        try {
          const r = await new Promise((resolve, reject) => {
            http.get({ host: '127.0.0.1', port, path: '/tcp', agent: false }, (res) => {
              const chunks = [];
              res.on('data', (c) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
            }).on('error', reject);
          });
          assert.deepEqual([r.status, json(r)], [200, { path: '/tcp' }]);
          break;
        } catch (e) {
          if (e.code !== 'ECONNREFUSED' || Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    } finally {
      proc.kill();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('node template warm start', { timeout: 30000 }, () => {
  it('waits on IRONFAAS_START_FD before loading the handler, then serves', async () => {
    const marker = path.join(os.tmpdir(), `ironfaas-node-start-${process.pid}`);
    fs.rmSync(marker, { force: true });
    const { tmp, bundle } = makeBundle(
      `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x');\n` +
      "module.exports = async () => process.env.IRONFAAS_START_FD || 'unset';\n");
    const sockPath = path.join(tmp, 'fn.sock');
    const proc = spawn(process.execPath, ['index.js'], {
      cwd: bundle,
      env: { ...process.env, IRONFAAS_SOCKET: sockPath, IRONFAAS_START_FD: '3' },
      stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
    });
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(proc.exitCode, null);
      assert.equal(fs.existsSync(marker), false, 'handler loaded before the byte');
      assert.equal(fs.existsSync(sockPath), false, 'listening before the byte');
      proc.stdio[3].write('s');
      const deadline = Date.now() + 10000;
      while (!fs.existsSync(sockPath) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const r = await call(sockPath, { path: '/' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'unset', 'the start descriptor is not left to the handler');
    } finally {
      proc.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.rmSync(marker, { force: true });
    }
  });
});
