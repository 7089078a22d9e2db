'use strict';
// ironfaas node runtime: serves function/handler.js over HTTP with Node's
// built-in http module (no Express, no npm dependencies).
//
// The handler contract is the OpenFaaS node template's:
//   module.exports = async (event, context) => value
// event.body is parsed as Express body-parser would; context has status(),
// headers(), succeed() and fail(). Listens on the Unix socket in
// $IRONFAAS_SOCKET, else on $HOST:$PORT (default 0.0.0.0:8080).
// GET /_/health answers 200 "OK".

const http = require('http');
const fs = require('fs');

const DEFAULT_LIMIT = '10mb';

// Parse a body-parser style size ("100kb", "1mb", "1.5gb", "2048") into bytes.
function parseSize(name, value) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(value);
  if (!m) {
    console.error(`node: ${name}=${JSON.stringify(value)} is not a size; use e.g. 100kb, 10mb or a number of bytes`);
    process.exit(2);
  }
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] || 'b').toLowerCase()];
  return Math.floor(parseFloat(m[1]) * unit);
}

const rawBody = process.env.RAW_BODY === 'true';
const jsonLimit = parseSize('MAX_JSON_SIZE', process.env.MAX_JSON_SIZE || DEFAULT_LIMIT);
const rawLimit = parseSize('MAX_RAW_SIZE', process.env.MAX_RAW_SIZE || DEFAULT_LIMIT);
const URLENCODED_PARAMETER_LIMIT = 1000;

// A warm spare (`serve --spare-sandbox warm`): the platform sets IRONFAAS_START_FD and writes
// one byte to it when a call needs this replica; until then node waits here, before the
// function's code is loaded. End of file means the spare is not needed.
function waitForStart() {
  const fd = process.env.IRONFAAS_START_FD;
  if (fd === undefined) return;
  delete process.env.IRONFAAS_START_FD;
  const buf = Buffer.alloc(1);
  let n;
  for (;;) {
    try {
      n = fs.readSync(Number(fd), buf, 0, 1, null);
      break;
    } catch (e) {
      if (e.code !== 'EINTR' && e.code !== 'EAGAIN') throw e;
    }
  }
  fs.closeSync(Number(fd));
  if (n === 0) process.exit(0);
}
waitForStart();

const handler = require('./function/handler');
if (typeof handler !== 'function') {
  console.error('node: function/handler.js must export a function: module.exports = async (event, context) => ...');
  process.exit(1);
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class FunctionEvent {
  constructor(req, body, path, query) {
    this.body = body;
    this.headers = req.headers;
    this.method = req.method;
    this.query = query;
    this.path = path;
  }
}

class FunctionContext {
  constructor(answer) {
    this.statusCode = 200;
    this.answer = answer;
    this.headerValues = {};
    this.cbCalled = 0;
  }

  status(statusCode) {
    if (!statusCode) {
      return this.statusCode;
    }
    this.statusCode = statusCode;
    return this;
  }

  headers(value) {
    if (!value) {
      return this.headerValues;
    }
    this.headerValues = value;
    return this;
  }

  succeed(value) {
    this.cbCalled++;
    this.answer(false, value);
    return this;
  }

  // Answers 500 (or the status already set, if not 200) with the error's text as the body.
  fail(value) {
    if (this.status() == 200) {
      this.status(500);
    }
    this.cbCalled++;
    this.answer(true, value);
    return this;
  }
}

// Keys that would overwrite Object.prototype members are dropped, as qs does.
function addParam(obj, key, value) {
  if (key in Object.prototype) {
    return;
  }
  if (Object.prototype.hasOwnProperty.call(obj, key)) {
    const prev = obj[key];
    obj[key] = Array.isArray(prev) ? prev.concat(value) : [prev, value];
  } else {
    obj[key] = value;
  }
}

function parseParams(text, limit) {
  const params = new URLSearchParams(text);
  const out = {};
  let n = 0;
  for (const [key, value] of params) {
    if (limit && ++n > limit) {
      throw new HttpError(413, `too many parameters (more than ${limit})`);
    }
    addParam(out, key, value);
  }
  return out;
}

function mediaType(contentType) {
  return contentType.split(';', 1)[0].trim().toLowerCase();
}

function charsetOf(contentType) {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return m ? m[1].toLowerCase() : 'utf-8';
}

function decodeText(buf, contentType) {
  const charset = charsetOf(contentType);
  let decoder;
  try {
    decoder = new TextDecoder(charset);
  } catch (e) {
    throw new HttpError(415, `unsupported charset "${charset}"`);
  }
  return decoder.decode(buf);
}

// How the body of this request is parsed: { kind, limit } (kind: raw, text, json, urlencoded).
function bodyKind(contentType) {
  if (rawBody) {
    return { kind: 'raw', limit: rawLimit };
  }
  const type = mediaType(contentType);
  if (type.startsWith('text/')) {
    return { kind: 'text', limit: rawLimit };
  }
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) {
    return { kind: 'json', limit: jsonLimit };
  }
  if (type === 'application/x-www-form-urlencoded') {
    return { kind: 'urlencoded', limit: rawLimit };
  }
  return { kind: 'raw', limit: rawLimit };
}

function decoderFor(encoding) {
  const zlib = require('zlib');
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      throw new HttpError(415, `unsupported content encoding "${encoding}"`);
  }
}

// Read the whole request body (decompressed) into a Buffer, at most `limit` bytes.
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const encoding = (req.headers['content-encoding'] || 'identity').trim().toLowerCase();
    const declared = req.headers['content-length'];
    if (encoding === 'identity' && declared !== undefined && Number(declared) > limit) {
      reject(new HttpError(413, `request body too large: ${declared} bytes, limit ${limit}`));
      return;
    }
    let stream = req;
    if (encoding !== 'identity') {
      try {
        stream = req.pipe(decoderFor(encoding));
      } catch (e) {
        reject(e);
        return;
      }
    }
    const chunks = [];
    let size = 0;
    let done = false;
    stream.on('data', (chunk) => {
      if (done) {
        return;
      }
      size += chunk.length;
      if (size > limit) {
        done = true;
        if (stream !== req) {
          req.unpipe(stream);
          stream.destroy();
        }
        reject(new HttpError(413, `request body too large: over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks, size));
      }
    });
    stream.on('error', (err) => {
      if (!done) {
        done = true;
        reject(stream === req ? err : new HttpError(400, `invalid ${encoding} body: ${err.message}`));
      }
    });
  });
}

// A request has a body if it declares one (as type-is' hasBody decides).
function hasBody(req) {
  return req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && !Number.isNaN(Number(req.headers['content-length'])));
}

// Parse the body the way the OpenFaaS node template's body-parser setup does.
async function parseBody(req) {
  // As upstream: a request without a body gets {} (body-parser's initial req.body).
  if (!hasBody(req)) {
    return {};
  }
  const contentType = req.headers['content-type'] || 'text/plain';
  const { kind, limit } = bodyKind(contentType);
  const buf = await readBody(req, limit);
  switch (kind) {
    case 'text':
      return decodeText(buf, contentType);
    case 'json': {
      const charset = charsetOf(contentType);
      if (!charset.startsWith('utf-')) {
        throw new HttpError(415, `unsupported charset "${charset}" for JSON`);
      }
      const text = decodeText(buf, contentType);
      if (text.trim() === '') {
        return {};
      }
      const first = text.trimStart()[0];
      if (first !== '{' && first !== '[') {
        throw new HttpError(400, 'invalid JSON body: expected an object or an array');
      }
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new HttpError(400, `invalid JSON body: ${e.message}`);
      }
    }
    case 'urlencoded':
      return parseParams(decodeText(buf, contentType), URLENCODED_PARAMETER_LIMIT);
    default:
      return buf;
  }
}

function hasHeader(headers, name) {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

// Serialize a handler value into [body Buffer, default Content-Type or undefined].
function serialize(value) {
  if (value === undefined || value === null) {
    return [Buffer.alloc(0), undefined];
  }
  if (Buffer.isBuffer(value)) {
    return [value, 'application/octet-stream'];
  }
  if (value instanceof Uint8Array) {
    return [Buffer.from(value.buffer, value.byteOffset, value.byteLength), 'application/octet-stream'];
  }
  if (typeof value === 'string') {
    return [Buffer.from(value, 'utf8'), 'text/html; charset=utf-8'];
  }
  if (typeof value === 'bigint') {
    return [Buffer.from(value.toString(), 'utf8'), 'application/json; charset=utf-8'];
  }
  return [Buffer.from(JSON.stringify(value), 'utf8'), 'application/json; charset=utf-8'];
}

let draining = false;

function sendPlain(res, status, text, close) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(text, 'utf8');
  const headers = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length };
  if (close || draining) {
    headers.Connection = 'close';
  }
  res.writeHead(status, headers);
  res.end(body);
}

function send(res, status, headers, value) {
  const code = Number(status);
  if (!Number.isInteger(code) || code < 200 || code > 999) {
    throw new Error(`invalid status code ${JSON.stringify(status)}: must be an integer from 200 to 999`);
  }
  const [body, defaultType] = serialize(value);
  const out = {};
  for (const [name, v] of Object.entries(headers || {})) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      continue;
    }
    out[name] = Array.isArray(v) ? v.map(String) : String(v);
  }
  if (defaultType && body.length && !hasHeader(out, 'content-type')) {
    out['Content-Type'] = defaultType;
  }
  if (code !== 204 && code !== 304) {
    out['Content-Length'] = body.length;
  }
  if (draining) {
    out.Connection = 'close';
  }
  // Validates names and values first, so a bad header becomes a 500, not a half-sent response.
  for (const [name, v] of Object.entries(out)) {
    res.setHeader(name, v);
  }
  res.writeHead(code);
  res.end(code === 204 || code === 304 ? undefined : body);
}

function internalError(res, req, err) {
  console.error(`node: error in ${req.method} ${req.url}:`, err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name of res.getHeaderNames()) {
    res.removeHeader(name);
  }
  sendPlain(res, 500, 'Internal Server Error');
}

async function onRequest(req, res) {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const search = q < 0 ? '' : req.url.slice(q + 1);

  if (req.method === 'GET' && path === '/_/health') {
    req.resume();
    sendPlain(res, draining ? 503 : 200, draining ? 'Draining' : 'OK');
    return;
  }

  let body;
  try {
    body = await parseBody(req);
  } catch (err) {
    if (err instanceof HttpError) {
      // The rest of an over-large or undecodable body is not read: close the connection.
      sendPlain(res, err.status, `${http.STATUS_CODES[err.status]}: ${err.message}\n`, true);
    } else {
      internalError(res, req, err);
    }
    return;
  }

  let responded = false;
  const answer = (failed, value) => {
    if (responded) {
      console.error(`node: ${req.method} ${req.url}: the handler answered more than once; ignoring the later answer`);
      return;
    }
    responded = true;
    try {
      if (failed) {
        console.error(`node: ${req.method} ${req.url}: context.fail:`, value);
        send(res, fnContext.status(), fnContext.headers(), value instanceof Error ? value.toString() : value);
      } else {
        send(res, fnContext.status(), fnContext.headers(), value);
      }
    } catch (e) {
      internalError(res, req, e);
    }
  };
  // The node-style callback passed as the third argument, as upstream: cb(err, value).
  const cb = (err, value) => (err ? fnContext.fail(err) : fnContext.succeed(value));

  let query;
  try {
    query = parseParams(search, 0);
  } catch (err) {
    internalError(res, req, err);
    return;
  }
  const fnEvent = new FunctionEvent(req, body, path, query);
  const fnContext = new FunctionContext(answer);

  try {
    const result = await handler(fnEvent, fnContext, cb);
    if (!fnContext.cbCalled) {
      fnContext.succeed(result);
    }
  } catch (err) {
    if (responded) {
      console.error(`node: ${req.method} ${req.url}: error after the response was sent:`, err);
      return;
    }
    responded = true;
    internalError(res, req, err);
  }
}

const server = http.createServer((req, res) => {
  onRequest(req, res).catch((err) => internalError(res, req, err));
});
// Keep idle keep-alive connections open: the platform's pool decides when to drop them.
server.keepAliveTimeout = 0;

// Tell the platform at once that connections are accepted (see IRONFAAS_READY_FD).
function signalReady(where) {
  console.error(`node: listening on ${where}`);
  const fd = Number(process.env.IRONFAAS_READY_FD);
  delete process.env.IRONFAAS_READY_FD;
  if (Number.isInteger(fd) && fd > 2) {
    try {
      fs.writeSync(fd, '1');
      fs.closeSync(fd);
    } catch (e) {
      // The platform falls back to probing.
    }
  }
}

function listen() {
  const socketPath = process.env.IRONFAAS_SOCKET;
  if (socketPath) {
    try {
      fs.unlinkSync(socketPath);
    } catch (e) {
      if (e.code !== 'ENOENT') {
        throw e;
      }
    }
    server.listen(socketPath, () => signalReady(`unix:${socketPath}`));
    return;
  }
  const host = process.env.HOST || '0.0.0.0';
  const port = Number(process.env.PORT || 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`node: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
    process.exit(2);
  }
  server.listen(port, host, () => signalReady(`${host}:${port}`));
}

function shutdown() {
  if (draining) {
    return;
  }
  draining = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
server.on('error', (err) => {
  console.error('node: server error:', err);
  process.exit(1);
});

listen();
